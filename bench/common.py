"""Shared bench plumbing: measured rows, child processes with their own peak RSS, servers
started and stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PYTHON = sys.executable


class BenchError(Exception):
    """A benchmark step failed; the message says which and shows the child's error output."""


@dataclass
class Row:
    """One line of RESULTS.md. `ratio` is this project / limit for throughputs (higher is
    better) and for times and memory as stated in `target`."""

    metric: str
    value: str
    limit: str
    limit_with: str
    ratio: float | None
    target: str
    met: bool | None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChildResult:
    output: dict
    seconds: float
    peak_rss_mb: float  # the child's own VmHWM


def vm_hwm_mb() -> float:
    """This process's peak RSS (VmHWM). Unlike ru_maxrss it starts afresh at exec, so it does
    not inherit the parent's RSS at fork time."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise BenchError("no VmHWM in /proc/self/status (Linux only)")


def emit(result: dict) -> None:
    """A child's last stdout line: its result plus its own peak RSS."""
    print(json.dumps({**result, "peak_rss_mb": vm_hwm_mb()}))


def run_child(args: list[str], *, timeout: float, stdin_text: str | None = None) -> ChildResult:
    """Run `python <args>` and parse the last stdout line as JSON (see `emit`), which carries
    the child's peak RSS; ru_maxrss from wait4 is only the fallback (it includes our own RSS).

    stdout/stderr go to temp files (no pipe to fill up); the child is killed by its PID when it
    outlives `timeout`.
    """
    log_dir = Path(os.environ.get("BENCH_TMP", "/tmp"))
    out_path = log_dir / f".bench-child-{os.getpid()}-{time.monotonic_ns()}.out"
    err_path = out_path.with_suffix(".err")
    started = time.perf_counter()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen(
            [PYTHON, *args],
            stdout=out,
            stderr=err,
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            cwd=ROOT,
        )
    try:
        if stdin_text is not None:
            assert process.stdin is not None
            process.stdin.write(stdin_text.encode())
            process.stdin.close()
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.kill(process.pid, signal.SIGKILL)
                os.waitpid(process.pid, 0)
                raise BenchError(f"child {' '.join(args[:2])} ran over {timeout:.0f} s: killed")
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        text = out_path.read_text()
        if process.returncode != 0:
            tail = err_path.read_text(errors="replace")[-3000:]
            raise BenchError(
                f"child {' '.join(args[:2])} exited with {process.returncode}:\n{tail}"
            )
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise BenchError(f"child {' '.join(args[:2])} printed nothing")
        output = json.loads(lines[-1])
        peak = output.pop("peak_rss_mb", usage.ru_maxrss / 1024)
        return ChildResult(output, seconds, peak)
    finally:
        out_path.unlink(missing_ok=True)
        err_path.unlink(missing_ok=True)


def stop_process(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """Terminate one process we started (by its PID), kill it if it does not exit in time."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def mb(n_bytes: float) -> float:
    return n_bytes / 1e6


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds >= 10 else f"{seconds:.2f} s"


def fmt_rate(bytes_: float, seconds: float) -> str:
    return f"{mb(bytes_) / seconds:.0f} MB/s ({fmt_seconds(seconds)})"
