#!/usr/bin/env bash
# The whole round trip on the embedded sandbox: Connect files on SFTP -> DuckDB -> audiences ->
# exports into the Responsys emulator. The sandbox runs as its own process, like a real account.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
SANDBOX_DIR=${RESPONSYS_SANDBOX_DIR:-warehouse/sandbox}
mkdir -p "$SANDBOX_DIR"
log="$SANDBOX_DIR/sandbox.log"

for var in RESPONSYS_SFTP_HOST RESPONSYS_ENDPOINT; do
  if [ -n "${!var:-}" ]; then echo "$var is set: the demo only runs on the sandbox; unset RESPONSYS_* first" >&2; exit 2; fi
done

echo "== starting the embedded Responsys sandbox (log: $log)"
$BIN/responsys-assets sandbox >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null' EXIT
for _ in $(seq 1 120); do
  [ -f "$SANDBOX_DIR/connection.json" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "sandbox failed to start:"; cat "$log"; exit 1; }
  sleep 0.5
done
[ -f "$SANDBOX_DIR/connection.json" ] || { echo "sandbox did not start in 60 s"; cat "$log"; exit 1; }
grep '^#' "$log" | head -3

echo "== responsys-assets run"
$BIN/responsys-assets run
status=$?

echo "== what happened"
$BIN/responsys-assets report
$BIN/python -m responsys_assets.sandbox.summary "$SANDBOX_DIR"

cat <<MSG

== next
  make dev                        # the Dagster UI on http://127.0.0.1:3000, on the same data
  notebooks/events.ipynb          # events by feed and day (jupyter or VS Code)
  notebooks/audiences.ipynb       # audience sizes, scores, who entered and exited
  $BIN/responsys-assets plan      # what the exports would send next, row by row
MSG
exit $status
