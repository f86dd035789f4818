"""The Responsys emulator in its own process for the export benchmark, so that the pipeline
under test and the emulator do not share one Python interpreter (and its GIL).

    python bench/emulator.py STATE_DIR SETTINGS_JSON     # prints the base URL, serves until killed
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import PYTHON, ROOT, BenchError, stop_process

START_TIMEOUT_SECONDS = 30.0


class EmulatorProcess:
    """An EmulatorServer on 127.0.0.1 in a child process; stopped by its PID."""

    def __init__(self, state_dir: Path, username: str, password: str, rate_limits: dict) -> None:
        self.state_dir = Path(state_dir)
        self._settings = {"username": username, "password": password, "rate_limits": rate_limits}
        self.process: subprocess.Popen | None = None
        self.base_url: str | None = None

    def __repr__(self) -> str:
        return f"EmulatorProcess(base_url={self.base_url!r})"

    def start(self) -> str:
        self.process = subprocess.Popen(
            [PYTHON, str(Path(__file__)), str(self.state_dir), "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(self._settings).encode() + b"\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], START_TIMEOUT_SECONDS)
        line = self.process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise BenchError(f"the emulator did not start within {START_TIMEOUT_SECONDS:.0f} s")
        self.base_url = line
        return line

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def __enter__(self) -> EmulatorProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def child_main(state_dir: Path) -> None:
    from responsys_assets.sandbox.api import EmulatorServer, EmulatorSettings

    settings = json.loads(sys.stdin.readline())
    server = EmulatorServer(state_dir, EmulatorSettings(**settings))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(server.start(), flush=True)
    try:
        while not stop.is_set():
            time.sleep(0.2)
    finally:
        server.stop()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    child_main(Path(sys.argv[1]))
