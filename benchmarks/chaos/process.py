"""The service as production runs it on the embedded default -- ``python -m server --launch-triton``, its own
process with a supervised tritonserver child -- plus what a chaos run needs from outside: the Triton
child's pid, its process group's live members (read from /proc), its health, SIGKILL.

Shared by ``benchmarks.chaos.run`` and the L1 supervision tests (tests/e2e/test_triton_supervision.py).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from benchmarks import common
from server.triton_runtime import free_port, group_members


def request_path_build(build_dir: Path, dest: Path, flavour: str = "cpu") -> Path:
    """A build directory whose ``triton/<flavour>`` links only the request-path models (no LLM, no hallucination
    scorer): the same kind of python-backend stubs, a faster start. Everything else is read from ``build_dir``
    through the settings the caller passes."""
    repo = dest / "triton" / flavour
    repo.mkdir(parents=True, exist_ok=True)
    for model in sorted((build_dir / "triton" / flavour).iterdir()):
        link = repo / model.name
        if (model / "config.pbtxt").is_file() and not model.name.startswith(("llm_", "hallucination_")) and not link.exists():
            link.symlink_to(model.resolve(), target_is_directory=True)
    return dest


def children(pid: int, name: str) -> list[int]:
    """Live children of ``pid`` whose command name is ``name`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            if int(ppid) == pid and comm == name and state != "Z":
                out.append(int(entry.name))
    return sorted(out)


class ServeProcess:
    """``python -m server --launch-triton --port <free>`` with ``env`` settings (``MANGAASSIST_*``)."""

    def __init__(self, build_dir: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.build_dir = Path(build_dir)
        self.log_path = Path(log_path)
        self.extra_env = dict(env or {})
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def start(self, timeout_s: float = 300.0) -> "ServeProcess":
        self.port = free_port()
        index = self.build_dir / "index"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MANGAASSIST_")}
        env.update({
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": f"{common.ROOT / 'proto'}{os.pathsep}{common.ROOT}",
            "MANGAASSIST_BUILD_DIR": str(self.build_dir),
            "MANGAASSIST_RETRIEVAL_INDEX_DIR": str(index),
            "MANGAASSIST_RETRIEVAL_CATALOG_DB": str(index / "catalog.sqlite"),
            "MANGAASSIST_SERVER_HOST": "127.0.0.1",
            "MANGAASSIST_SERVER_METRICS_PORT": "-1",
            **self.extra_env,
        })
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server", "--launch-triton", "--port", str(self.port)],
                cwd=common.ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
            )
        if not self.wait_health("readiness", "SERVING", timeout_s):
            self.stop()
            raise RuntimeError(f"the service was not ready after {timeout_s:.0f}s:\n{self.log_tail()}")
        return self

    def health(self, service: str = "readiness", timeout_s: float = 2.0) -> str:
        """SERVING / NOT_SERVING, or UNREACHABLE."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(self.target) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
            except grpc.RpcError:
                return "UNREACHABLE"
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def wait_health(self, service: str, status: str, timeout_s: float, poll_s: float = 0.1) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            if self.health(service) == status:
                return True
            time.sleep(poll_s)
        return False

    def triton_pid(self) -> int | None:
        pids = children(self.pid, "tritonserver")
        return pids[0] if pids else None

    def kill_triton(self) -> tuple[int, list[tuple[int, str]]]:
        """SIGKILL tritonserver alone (its stubs are left to the service); returns its pid (= its process
        group) and the group's members at that moment."""
        pid = self.triton_pid()
        if pid is None:
            raise RuntimeError(f"no tritonserver under the service (pid {self.pid}):\n{self.log_tail()}")
        members = group_members(pid)
        os.kill(pid, signal.SIGKILL)
        return pid, members

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.is_file():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 60.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: drain, then Triton stops last
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def __enter__(self) -> "ServeProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def wait_group_empty(pgid: int, timeout_s: float) -> list[tuple[int, str]]:
    """Poll until process group ``pgid`` has no live member; returns what is left at the deadline."""
    deadline = time.monotonic() + timeout_s
    left = group_members(pgid)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = group_members(pgid)
    return left


@contextlib.contextmanager
def warm_service(build: Path, name: str, *, request_path_only: bool) -> Iterator[tuple[ServeProcess, list[str]]]:
    """``python -m server --launch-triton`` on ``build`` (only the request-path models when asked), warmed with 10
    chats, and the shuffled held-out intent texts the load draws from: the set-up the chaos and soak runs share.
    The service's log goes to ``benchmarks/results/tmp/<name>/service.log``."""
    messages = common.intent_texts(build / "data", limit=1000)
    random.Random(0).shuffle(messages)
    env = {"MANGAASSIST_LLM_LOCAL_WARMUP": "false"} if request_path_only else {}
    with tempfile.TemporaryDirectory(prefix=f"mangaassist-{name}-") as scratch:
        if request_path_only:
            env["MANGAASSIST_BUILD_DIR"] = str(request_path_build(build, Path(scratch)))
        with ServeProcess(build, common.DEFAULT_RESULTS_DIR / "tmp" / name / "service.log", env) as serve:
            from clients.sdk import MangaAssistClient

            with MangaAssistClient(serve.target, timeout=30.0) as client:
                for message in messages[:10]:  # warm-up, as benchmarks.service.load does
                    client.chat(message)
            yield serve, messages
