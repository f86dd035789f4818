"""`responsys-assets`: run the pipeline once, start the sandbox, plan or release exports."""

# One module per command; each registers its arguments with `add_parser`.

from __future__ import annotations

import argparse
import sys

from responsys_assets.cli import plan, release, report, run, sandbox
from responsys_assets.settings import ConfigurationError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="responsys-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (run, sandbox, plan, release, report):
        command.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from responsys_assets.config import ConfigError

        if isinstance(exc, ConfigError):
            print(f"configuration error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
