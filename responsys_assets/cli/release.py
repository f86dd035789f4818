"""`responsys-assets release`: list or settle export batches whose outcome is unknown."""

from __future__ import annotations

import sys

from responsys_assets.cli.pipeline import require_warehouse
from responsys_assets.settings import load_settings


def add_parser(sub) -> None:
    release = sub.add_parser("release", help="list or release batches with an unknown outcome")
    release.add_argument("export", nargs="?")
    release.add_argument("batch", nargs="?")
    group = release.add_mutually_exclusive_group()
    group.add_argument("--resend", action="store_true")
    group.add_argument("--mark-sent", action="store_true")
    release.set_defaults(func=cmd_release)


def cmd_release(args) -> int:
    from responsys_assets.defs.exports import ledger
    from responsys_assets.warehouse import open_connection

    settings = load_settings()
    require_warehouse(settings)
    conn = open_connection(settings.warehouse)
    try:
        if not args.batch:
            for export, batch, records, error in ledger.unknown_batches(conn, args.export):
                print(f"{export} {batch} ({records} records): {error}")
            return 0
        if not (args.resend or args.mark_sent):
            print("say what to do with the batch: --resend or --mark-sent", file=sys.stderr)
            return 2
        if ledger.release(conn, args.export, args.batch, resend=args.resend):
            verdict = "will be resent" if args.resend else "accepted as sent"
            print(f"{args.export} {args.batch}: {verdict}")
            return 0
        print(f"{args.export} {args.batch}: no batch with an unknown outcome", file=sys.stderr)
        return 2
    finally:
        conn.close()
