"""The chart's Triton command line, run on a real tritonserver (2.51, from the nvidia-pytriton wheel).

Rendering proves the YAML is valid; this proves Triton accepts the flags exactly as rendered
(restricted-protocol syntax, metrics config, python backend config, response cache) and that the
admin protocols really require the header while health and metadata stay open.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import helm_python
import pytest
import yaml

pytestmark = pytest.mark.L1

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "mangaassist"


def _triton_home() -> Path | None:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    home = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    return home if (home / "bin" / "tritonserver").exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def _rendered_triton(values: dict) -> tuple[list[str], str]:
    with helm_python.Chart.load(CHART) as chart:
        manifests = chart.render(values, name="mangaassist", namespace="shop")
    objects = [d for k, v in manifests.items() if not k.endswith("NOTES.txt") for d in yaml.safe_load_all(v) if d]
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mangaassist-triton")
    secret = next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "mangaassist-triton-admin")
    c = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "tritonserver")
    admin_value = base64.b64decode(secret["data"]["admin-key"]).decode()
    return c["command"] + c["args"], admin_value


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    home = _triton_home()
    if home is None:
        pytest.skip("tritonserver binary (nvidia-pytriton wheel) not installed")
    argv, admin_value = _rendered_triton({"triton": {"responseCache": {"enabled": True}}})
    ports = {"http": _free_port(), "grpc": _free_port(), "metrics": _free_port()}
    models = tmp_path_factory.mktemp("models")
    replaced = []
    for arg in argv:
        # What the kubelet does with $(VAR) references to env vars from the Secret.
        arg = arg.replace("$(TRITON_ADMIN_VALUE)", admin_value)
        if arg.startswith("--model-repository="):
            arg = f"--model-repository={models}"
        for name, port in ports.items():
            if arg.startswith(f"--{name}-port="):
                arg = f"--{name}-port={port}"
        replaced.append(arg)
    binary = home / "bin" / "tritonserver"
    binary.chmod(binary.stat().st_mode | 0o111)
    # Paths that are the defaults inside the NGC image (/opt/tritonserver/...) live in the wheel here.
    command = [str(binary), *replaced[1:], f"--backend-directory={home / 'backends'}",
               f"--cache-directory={home / 'caches'}"]
    log = tmp_path_factory.mktemp("log") / "triton.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{ports['http']}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tritonserver rejected the rendered flags:\n{log.read_text()[-3000:]}")
        try:
            if _http(f"{base}/v2/health/ready") == 200:
                break
        except OSError:
            pass
        time.sleep(0.25)
    else:
        process.kill()
        pytest.fail(f"tritonserver did not become ready:\n{log.read_text()[-3000:]}")
    yield {"process": process, "ports": ports, "base": base, "admin": admin_value, "argv": replaced, "log": log}
    if process.poll() is None:
        process.kill()
        process.wait()


def test_rendered_flags_are_accepted(triton):
    assert "--model-control-mode=none" in triton["argv"]
    assert any(a.startswith("--cache-config=local,size=") for a in triton["argv"])
    assert _http(f"{triton['base']}/v2/health/live") == 200
    assert _http(f"{triton['base']}/v2/health/ready") == 200
    assert _http(f"http://127.0.0.1:{triton['ports']['metrics']}/metrics") == 200


def test_http_admin_api_needs_the_header(triton):
    assert _http(f"{triton['base']}/v2") == 200  # metadata stays open
    assert _http(f"{triton['base']}/v2/models/stats") == 403
    assert _http(f"{triton['base']}/v2/models/stats", {"admin-key": triton["admin"]}) == 200
    assert _http(f"{triton['base']}/v2/repository/index", {"admin-key": "wrong"}) == 403


def test_grpc_admin_protocols_need_the_header(triton):
    grpcclient = pytest.importorskip("tritonclient.grpc")
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(f"127.0.0.1:{triton['ports']['grpc']}")
    try:
        assert client.is_server_live() and client.is_server_ready()  # health/metadata open
        assert client.get_server_metadata().version
        with pytest.raises(InferenceServerException, match="restricted"):
            client.get_inference_statistics()
        header = {"triton-grpc-protocol-admin-key": triton["admin"]}
        client.get_inference_statistics(headers=header)
        client.get_model_repository_index(headers=header)
    finally:
        client.close()


def test_sigterm_exits_within_the_exit_timeout(triton):
    process = triton["process"]
    exit_timeout = next(int(a.split("=", 1)[1]) for a in triton["argv"] if a.startswith("--exit-timeout-secs="))
    started = time.monotonic()
    os.kill(process.pid, signal.SIGTERM)
    process.wait(timeout=exit_timeout + 10)
    assert time.monotonic() - started < exit_timeout
    assert process.returncode == 0, triton["log"].read_text()[-2000:]
