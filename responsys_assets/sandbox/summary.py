"""Print what the sandbox's "Responsys" received.

Usage: `python -m responsys_assets.sandbox.summary [SANDBOX_DIR]`.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from responsys_assets.sandbox.store import Store


def summarise(store: Store) -> str:
    lines = ["\nWhat the sandbox Responsys account received"]
    for table, count in store.counts().items():
        lines.append(f"  {table:<20} {count:>8}")
    calls = Counter()
    throttled = 0
    for call in store.api_calls():
        calls[(call["api"], call["status"])] += 1
        throttled += call.get("error_code") == "API_LIMIT_EXCEEDED"
    lines.append("  API calls by api and HTTP status:")
    for (api, status), count in sorted(calls.items()):
        lines.append(f"    {api:<28} {status}  {count:>6}")
    lines.append(f"  API_LIMIT_EXCEEDED responses: {throttled}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "warehouse/sandbox")
    path = folder / "api" / "responsys_emulator.sqlite"
    if not path.exists():
        print(f"no sandbox state at {path}")
        return 1
    print(summarise(Store(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
