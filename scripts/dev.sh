#!/usr/bin/env bash
# The embedded sandbox plus `dagster dev` (webserver and daemon) on 127.0.0.1:3000.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
SANDBOX_DIR=${RESPONSYS_SANDBOX_DIR:-warehouse/sandbox}
mkdir -p "$SANDBOX_DIR"
$BIN/responsys-assets sandbox >"$SANDBOX_DIR/sandbox.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null' EXIT
for _ in $(seq 1 120); do [ -f "$SANDBOX_DIR/connection.json" ] && break; sleep 0.5; done
echo "sandbox running (pid $pid); Dagster UI on http://127.0.0.1:${PORT:-3000}"
$BIN/dagster dev -w workspace.yaml -h 127.0.0.1 -p "${PORT:-3000}"
