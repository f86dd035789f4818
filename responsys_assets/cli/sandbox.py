"""`responsys-assets sandbox`: the embedded Responsys sandbox in the foreground."""

from __future__ import annotations

import signal
import sys
import threading

from responsys_assets.settings import load_settings


def add_parser(sub) -> None:
    sandbox = sub.add_parser("sandbox", help="start the embedded Responsys sandbox")
    sandbox.add_argument("--contacts", type=int, default=None)
    sandbox.add_argument("--new-files", action="store_true", help="drop a new set of files")
    sandbox.set_defaults(func=cmd_sandbox)


def cmd_sandbox(args) -> int:
    from responsys_assets.config import load_config
    from responsys_assets.sandbox import SampleData, Sandbox

    settings = load_settings()
    sample = SampleData.from_env()
    if args.contacts:
        sample.contacts = args.contacts
    sandbox = Sandbox(settings.sandbox_dir, load_config(settings.config_path), sample)
    conn = sandbox.start()
    if args.new_files:
        files = sandbox.drop_sample_files(seed=None)
        print(f"dropped {len(files)} new Connect files")
    print("# The embedded Responsys sandbox is running (Ctrl-C to stop).")
    print(f"# SFTP {conn.sftp_host}:{conn.sftp_port} serving {conn.sftp_root}")
    print(f"# REST API emulator {conn.api_endpoint}; what it received: {conn.api_state_path}")
    print("# With no RESPONSYS_* variable set the pipeline finds it by itself. To point a")
    print("# pipeline at it explicitly instead, export:")
    for name, value in sandbox.environment().items():
        print(f'export {name}="{value}"')
    sys.stdout.flush()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        sandbox.stop()
    return 0
