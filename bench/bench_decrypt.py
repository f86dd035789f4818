"""Benchmark: our streaming Decryptor against `gpg --decrypt` on the same real-GnuPG file.

    python bench/bench_decrypt.py --size-mb 160 --out bench/results/decrypt.json

Generates Connect-like CSV text, encrypts it with real gpg (a temporary GNUPGHOME and a
passphrase-protected RSA key), times `gpg --decrypt` and `Decryptor.decrypt_file` (best of
--runs each), and measures our peak RSS in a child process: of the whole process (ru_maxrss)
and during the decryption alone (VmHWM, reset through /proc/self/clear_refs). The issue's
bar: ours >= 50% of gpg's throughput, with memory that does not grow with the file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PASSPHRASE = "bench passphrase"  # a throwaway key made for this run
RECIPIENT = "bench@responsys.test"


def write_csv(path: Path, size: int, seed: int = 1) -> None:
    """Connect-like event rows: realistic field shapes, compresses about 4:1 with zlib."""
    rng = random.Random(seed)
    pool = [
        f"{rng.choice((1, 4, 6, 7))},{rng.randint(1000, 99999)},{rng.randint(1, 50)},"
        f"{rng.randint(10**6, 10**9)},CUST{rng.randint(0, 10**7):08d},"
        f"user{rng.randint(0, 10**7)}@example.com,23-NOV-2026 {rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d},{rng.randint(1, 999)},"
        f"{rng.randint(1, 99999)},H\n"
        for _ in range(50_000)
    ]
    with open(path, "w") as f:
        written = f.write(
            "EVENT_TYPE_ID,ACCOUNT_ID,LIST_ID,RIID,CUSTOMER_ID,EMAIL_ADDRESS,"
            "EVENT_CAPTURED_DT,CAMPAIGN_ID,LAUNCH_ID,EMAIL_FORMAT\n"
        )
        while written < size:
            block = "".join(rng.choices(pool, k=10_000))[: size - written]
            written += f.write(block)


def gpg(home: Path, *args: str) -> None:
    subprocess.run(
        ["gpg", "--batch", "--yes", *args],
        env={**os.environ, "GNUPGHOME": str(home)},
        check=True,
        capture_output=True,
        timeout=600,
    )


def unlocked(*args: str) -> list[str]:
    return ["--pinentry-mode", "loopback", "--passphrase", PASSPHRASE, *args]


def make_key(home: Path) -> str:
    """An RSA-3072 signing key with an RSA-3072 encryption subkey (gpg's defaults)."""
    gpg(home, *unlocked("--quick-gen-key", f"Bench <{RECIPIENT}>", "rsa3072", "sign,cert"))
    listing = subprocess.run(
        ["gpg", "--batch", "--list-keys", "--with-colons", RECIPIENT],
        env={**os.environ, "GNUPGHOME": str(home)},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line[:4] == "fpr:")
    gpg(home, *unlocked("--quick-add-key", fingerprint, "rsa3072", "encr"))
    exported = subprocess.run(
        ["gpg", "--batch", *unlocked("--export-secret-keys", "--armor", RECIPIENT)],
        env={**os.environ, "GNUPGHOME": str(home)},
        check=True,
        capture_output=True,
        text=True,
    )
    return exported.stdout


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def time_gpg(home: Path, src: Path, dst: Path) -> float:
    started = time.perf_counter()
    gpg(home, *unlocked("-o", str(dst), "--decrypt", str(src)))
    return time.perf_counter() - started


def run_ours(key_file: Path, src: Path, dst: Path) -> dict:
    """Runs our decryption in a fresh child process so its peak RSS is its own."""
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(key_file), str(src), str(dst)],
        input=PASSPHRASE,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads(child.stdout)


def child_main(key_file: Path, src: Path, dst: Path) -> None:
    started = time.perf_counter()
    from responsys_assets.lib.pgp import Decryptor

    decryptor = Decryptor(key_file.read_text(), sys.stdin.read())
    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path("/proc/self/clear_refs").write_text("5")  # Linux: restart VmHWM, the peak RSS
    stats = decryptor.decrypt_file(src, dst)
    status = Path("/proc/self/status").read_text().splitlines()
    decrypt_hwm_kb = int(next(line for line in status if line.startswith("VmHWM")).split()[1])
    print(
        json.dumps(
            {
                "seconds": stats.seconds,
                "seconds_with_startup_and_key_unlock": time.perf_counter() - started,
                "bytes_out": stats.bytes_out,
                "cipher": stats.cipher,
                "compression": stats.compression,
                "rss_before_decrypt_mb": rss_before_kb / 1024,
                "decrypt_peak_rss_mb": decrypt_hwm_kb / 1024,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=160)
    parser.add_argument("--runs", type=int, default=2, help="best of N runs for each side")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-gpg-", dir="/tmp"))  # short: agent socket path
    home = work / "h"
    home.mkdir(mode=0o700)
    try:
        plain, enc = work / "events.csv", work / "events.csv.gpg"
        write_csv(plain, int(args.size_mb * 1_000_000))
        key_file = work / "key.asc"
        key_file.write_text(make_key(home))
        key_file.chmod(0o600)
        gpg(home, "--trust-model", "always", "-r", RECIPIENT, "-o", str(enc), "-e", str(plain))

        gpg_out, ours_out = work / "gpg.out", work / "ours.out"
        gpg_seconds = min(time_gpg(home, enc, gpg_out) for _ in range(args.runs))
        ours_runs = [run_ours(key_file, enc, ours_out) for _ in range(args.runs)]
        ours = min(ours_runs, key=lambda r: r["seconds"])
        expected = sha256(plain)
        if sha256(gpg_out) != expected or sha256(ours_out) != expected:
            raise SystemExit("decrypted output differs from the plaintext")

        size = plain.stat().st_size
        result = {
            "size_bytes": size,
            "encrypted_bytes": enc.stat().st_size,
            "cipher": ours["cipher"],
            "compression": ours["compression"],
            "cpus": os.cpu_count(),
            "gpg_seconds": round(gpg_seconds, 3),
            "ours_seconds": round(ours["seconds"], 3),
            "ours_seconds_with_startup_and_key_unlock": round(
                ours["seconds_with_startup_and_key_unlock"], 3
            ),
            "gpg_mb_s": round(size / 1e6 / gpg_seconds, 1),
            "ours_mb_s": round(size / 1e6 / ours["seconds"], 1),
            "ratio": round(gpg_seconds / ours["seconds"], 2),
            "ours_rss_before_decrypt_mb": round(ours["rss_before_decrypt_mb"], 1),
            "ours_peak_rss_mb": round(max(r["peak_rss_mb"] for r in ours_runs), 1),
            "ours_peak_rss_during_decrypt_mb": round(
                max(r["decrypt_peak_rss_mb"] for r in ours_runs), 1
            ),
        }
        text = json.dumps(result, indent=2)
        print(text)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n")
    finally:
        subprocess.run(
            ["gpgconf", "--kill", "gpg-agent"],
            env={**os.environ, "GNUPGHOME": str(home)},
            capture_output=True,
            check=False,
        )
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child_main(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
