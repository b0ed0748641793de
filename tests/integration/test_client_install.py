"""A backend team installs the client SDK alone (issue 25 item 4): the bare distribution, no extras, into an empty
venv holds grpcio + protobuf (+ the health stubs) and nothing else, and from that venv ``clients.sdk`` makes a
Chat call against a real grpc.aio service (the fake backend, started here from the project's venv).

The project is built into a wheel from a copy of its sources (pip builds in the tree it is given; the shared
checkout stays untouched), with the project venv's setuptools; pip then fetches the three dependencies from the
package index (its cache after the first run). No skip: the index is what set-up itself installs from."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: What pyproject.toml's [tool.setuptools.packages.find] packages, from where.
PACKAGES = ("contracts", "server", "clients", "model_repository", "benchmarks", "proto")
#: Everything a bare ``pip install mangaassist`` may put in a venv (pip/setuptools come with the venv itself).
CLIENT_DISTRIBUTIONS = {"mangaassist", "grpcio", "grpcio-health-checking", "protobuf"}
VENV_OWN = {"pip", "setuptools", "wheel"}
HEAVY = {"torch", "mlflow", "onnxruntime", "tritonclient", "numpy", "transformers", "fastapi"}

CLIENT_SCRIPT = """
import json, sys
from clients.sdk import MangaAssistClient
import clients, mangaassist.v1
with MangaAssistClient(sys.argv[1], timeout=10.0) as client:
    reply = client.chat("is Chainsaw Man vol 3 in stock?", session_id="install-1", customer_id="C-1042",
                        request_id="client-install-1")
print(json.dumps({
    "answer": reply.answer, "intent": reply.intent, "request_id": reply.request_id,
    "clients_file": clients.__file__, "stubs_file": mangaassist.v1.__file__,
    "modules": sorted({m.split(".")[0] for m in sys.modules}),
}))
"""


def _clean_env() -> dict[str, str]:
    """The caller's environment without anything that would put the checkout or the project venv on sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(argv: list[str], cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _copy_sources(dst: Path) -> None:
    dst.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, dst / name)
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py*"):
            if path.suffix in (".py", ".pyi") and "__pycache__" not in path.parts:
                target = dst / path.relative_to(REPO)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)


def _client_venv(tmp: Path) -> Path:
    """An empty venv with the project installed without extras; returns its python."""
    src, wheels, venv = tmp / "src", tmp / "wheels", tmp / "venv"
    _copy_sources(src)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)], tmp)
    (wheel,) = wheels.glob("mangaassist-*.whl")
    _run([sys.executable, "-m", "venv", str(venv)], tmp)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", str(wheel)], tmp)
    return python


async def test_the_bare_install_is_the_client_and_it_calls_the_service(tmp_path, make_server):
    python = await asyncio.to_thread(_client_venv, tmp_path)

    listed = json.loads(_run([str(python), "-m", "pip", "list", "--format=json"], tmp_path))
    installed = {d["name"].lower().replace("_", "-") for d in listed} - VENV_OWN
    assert not installed & HEAVY, f"the client install pulled {sorted(installed & HEAVY)}"
    assert installed == CLIENT_DISTRIBUTIONS, f"a bare install holds {sorted(installed)}"

    running = await make_server()
    proc = await asyncio.create_subprocess_exec(
        str(python), "-c", CLIENT_SCRIPT, running.target, cwd=tmp_path, env=_clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, f"the client call failed in the client-only venv:\n{err.decode()[-3000:]}"
    got = json.loads(out.decode().strip().splitlines()[-1])

    assert got["request_id"] == "client-install-1"  # the service answered this call
    assert got["answer"] and got["intent"]
    venv = str(python.parent.parent)
    assert got["clients_file"].startswith(venv) and got["stubs_file"].startswith(venv), got  # not the checkout
    # importing the SDK and calling pulls in none of the other planes
    assert not {"server", "model_repository", "benchmarks", "numpy"} & set(got["modules"]), got["modules"]
