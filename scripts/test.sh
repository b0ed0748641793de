#!/usr/bin/env bash
# Set up (cached), then run every test tier: L0 unit/integration and L1 tests against a real tritonserver.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Milvus Lite starts here (tests/unit/test_retrieval_milvus.py): failing to start is a failure, not a skip
export MANGAASSIST_REQUIRE_MILVUS=1
.venv/bin/python -m model_repository configs --check
exec .venv/bin/python -m pytest tests -q "$@"
