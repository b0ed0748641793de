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
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import helm_python
import pytest
import yaml

from server.triton_runtime import prepare_backends, server_environment
from tests.support.requirements import require

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
    require("tritonserver", home is not None, "the chart's Triton flags run on the wheel's tritonserver binary")
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
    backends = prepare_backends(tmp_path_factory.mktemp("backends"))  # the python backend + this Python's stub
    command = [str(binary), *replaced[1:], f"--backend-directory={backends}",
               f"--cache-directory={home / 'caches'}"]
    log = tmp_path_factory.mktemp("log") / "triton.log"
    with log.open("w") as out:
        # the python backend's stub imports this venv's numpy (the sidecar test loads a python model)
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=server_environment())
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
    yield {"process": process, "ports": ports, "base": base, "admin": admin_value, "argv": replaced, "log": log,
           "models": models}
    if process.poll() is None:
        process.kill()
        process.wait()


def test_rendered_flags_are_accepted(triton):
    assert "--model-control-mode=explicit" in triton["argv"] and "--load-model=*" in triton["argv"]
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
    import tritonclient.grpc as grpcclient  # pinned in pyproject.toml: a missing one is an error, not a skip
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


ECHO_CONFIG = """name: "echo"
backend: "python"
max_batch_size: 0
input [ { name: "IN", data_type: TYPE_FP32, dims: [ 1 ] } ]
output [ { name: "OUT", data_type: TYPE_FP32, dims: [ 1 ] } ]
instance_group [ { kind: KIND_CPU, count: 1 } ]
"""
ECHO_MODEL = """import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUT", pb_utils.get_input_tensor_by_name(r, "IN").as_numpy())])
                for r in requests]
"""
#: A stand-in ``aws s3 sync SRC DEST``: copies new/changed files from $FAKE_BUCKET and prints aws-cli's lines.
FAKE_AWS = """#!/usr/bin/env python3
import filecmp, os, shutil, sys
args = [a for a in sys.argv[1:] if not a.startswith("--")]
assert args[:2] == ["s3", "sync"], args
src, dest = os.environ["FAKE_BUCKET"], args[3]
for root, _, files in os.walk(src):
    for name in sorted(files):
        rel = os.path.relpath(os.path.join(root, name), src)
        target = os.path.join(dest, rel)
        if os.path.exists(target) and filecmp.cmp(os.path.join(root, name), target, shallow=False):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(root, name), target)
        print(f"download: {args[2].rstrip('/')}/{rel} to {os.path.relpath(target)}")
"""


def test_repository_load_api_is_behind_the_admin_header(triton):
    url = f"{triton['base']}/v2/repository/models/echo/load"
    for headers in ({}, {"admin-key": "wrong"}):
        request = urllib.request.Request(url, data=b"", headers=headers, method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 403


def test_model_sync_sidecar_loads_a_new_model_without_a_restart(triton, tmp_path):
    """The rendered sidecar script, run here with a stand-in aws: a model that appears in the bucket after start
    is synced into the repository and loaded by the repository API (the admin header), on the same process."""
    with helm_python.Chart.load(CHART) as chart:
        manifests = chart.render({"triton": {"modelRepository": {"s3": {"syncIntervalSeconds": 1}}}},
                                 name="mangaassist", namespace="shop")
    objects = [d for k, v in manifests.items() if not k.endswith("NOTES.txt") for d in yaml.safe_load_all(v) if d]
    deployment = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mangaassist-triton")
    sidecar = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "model-sync")
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    bucket, bin_dir = tmp_path / "bucket", tmp_path / "bin"
    (bucket / "echo" / "1").mkdir(parents=True)
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS.replace("/usr/bin/env python3", sys.executable))
    (bin_dir / "aws").chmod(0o755)
    env.update(MODELS=str(triton["models"]), TRITON_HTTP=triton["base"], TRITON_ADMIN_VALUE=triton["admin"],
               FAKE_BUCKET=str(bucket), PATH=f"{bin_dir}:{os.environ['PATH']}", HOME=str(tmp_path))
    assert _http(f"{triton['base']}/v2/models/echo/ready") != 200
    log = tmp_path / "sidecar.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*sidecar["command"], *sidecar["args"]], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        (bucket / "echo" / "1" / "model.py").write_text(ECHO_MODEL)
        (bucket / "echo" / "config.pbtxt").write_text(ECHO_CONFIG)
        deadline = time.monotonic() + 60
        while _http(f"{triton['base']}/v2/models/echo/ready") != 200:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, (f"the sidecar did not load the model:\n{log.read_text()}\n"
                                                 f"{triton['log'].read_text()[-2000:]}")
            time.sleep(0.25)
        # a new version of the loaded model: reloaded by the sidecar, and the pod's readiness (the rendered probe's
        # path) stays 200 throughout -- with --strict-readiness=true it reads 400 for the whole reload
        loads = log.read_text().count("model-sync: loaded echo")
        (bucket / "echo" / "2").mkdir()
        (bucket / "echo" / "2" / "model.py").write_text(ECHO_MODEL)
        (bucket / "echo" / "config.pbtxt").write_text(ECHO_CONFIG + "version_policy: { specific: { versions: [1, 2] } }\n")
        probes, not_ready = 0, []
        deadline = time.monotonic() + 60
        while _http(f"{triton['base']}/v2/models/echo/versions/2/ready") != 200 or log.read_text().count(
                "model-sync: loaded echo") == loads:
            assert time.monotonic() < deadline, f"the sidecar did not reload the model:\n{log.read_text()}"
            code = _http(f"{triton['base']}/v2/health/ready")
            probes += 1
            if code != 200:
                not_ready.append(code)
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    assert "model-sync: loaded echo" in log.read_text()
    assert probes > 5 and not_ready == [], (probes, not_ready[:5])
    assert _http(f"{triton['base']}/v2/models/echo/versions/1/ready") == 200  # the loaded version kept serving
    assert triton["process"].poll() is None  # the same tritonserver throughout


def test_sigterm_exits_within_the_exit_timeout(triton):
    process = triton["process"]
    exit_timeout = next(int(a.split("=", 1)[1]) for a in triton["argv"] if a.startswith("--exit-timeout-secs="))
    started = time.monotonic()
    os.kill(process.pid, signal.SIGTERM)
    process.wait(timeout=exit_timeout + 10)
    assert time.monotonic() - started < exit_timeout
    assert process.returncode == 0, triton["log"].read_text()[-2000:]
