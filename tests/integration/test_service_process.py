"""``python -m server --fake-backend`` as a real process: serves, exposes /metrics, drains on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import server.stages.rules  # noqa: F401 -- the real process needs the rule fast path: an ImportError fails here
from clients.sdk import MangaAssistClient

pytestmark = pytest.mark.L0
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_process_serves_metrics_and_exits_cleanly_on_sigterm(tmp_path):
    port, metrics_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'proto'}{os.pathsep}{ROOT}",
        "MANGAASSIST_BUILD_DIR": str(tmp_path),
        "MANGAASSIST_RETRIEVAL_CATALOG_DB": str(tmp_path / "none.sqlite"),
        "MANGAASSIST_RETRIEVAL_INDEX_DIR": str(tmp_path / "none"),
        "MANGAASSIST_SERVER_DRAIN_GRACE_S": "2",
        "MANGAASSIST_SERVER_HOST": "127.0.0.1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "--fake-backend", "--port", str(port), "--metrics-port", str(metrics_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        with MangaAssistClient(f"127.0.0.1:{port}", timeout=2) as client:
            deadline = time.monotonic() + 120  # start-up under load (imports, the relation classifier) -- a hang detector
            while True:
                try:
                    assert client.health("") == "SERVING"
                    break
                except Exception:  # noqa: BLE001 -- still starting
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.1)
            assert client.chat("hello").intent == "chitchat"
        body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        assert 'mangaassist_stage_seconds_bucket{le="0.001",stage="rules"}' in body
        assert 'mangaassist_requests_total{code="OK",method="Chat"} 1.0' in body
        assert 'mangaassist_tiers_total{tier="template"} 1.0' in body
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stdout.read().decode()
    assert "drained" in log, log
