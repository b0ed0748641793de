#!/usr/bin/env bash
# Run the service end to end on the embedded default: real tritonserver + real models + the gRPC
# ensemble service, then answer a demo chat through the CLI. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PORT=${MANGAASSIST_GRPC_PORT:-50051}
.venv/bin/python -m server --launch-triton --port "$PORT" &
SERVE_PID=$!
trap 'kill -TERM $SERVE_PID 2>/dev/null; wait $SERVE_PID 2>/dev/null' EXIT
echo "[run] waiting for readiness on localhost:$PORT"
for _ in $(seq 1 240); do
  if .venv/bin/mangaassist --target "localhost:$PORT" health --service readiness >/dev/null 2>&1; then break; fi
  if ! kill -0 "$SERVE_PID" 2>/dev/null; then echo "[run] the service exited before it was ready (see its log above)" >&2; exit 1; fi
  sleep 1
done
.venv/bin/mangaassist --target "localhost:$PORT" health --service readiness
title=$(head -1 .build/data/catalog.jsonl | .venv/bin/python -c "import json,sys; print(json.load(sys.stdin)['title'])")
echo "[run] demo: how much is $title?"
.venv/bin/mangaassist --target "localhost:$PORT" chat "how much is $title?"
echo "hi there
where is my order MA-12345678
can I return a damaged box set" | .venv/bin/mangaassist --target "localhost:$PORT" classify
if [ "${1:-}" = "--keep" ]; then echo "[run] serving on localhost:$PORT; Ctrl-C to stop"; wait $SERVE_PID; fi
