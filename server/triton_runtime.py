"""Embedded Triton runtime: start the real ``tritonserver`` binary (from the nvidia-pytriton wheel) on free
loopback ports with a built model repository, wait for readiness, expose the URLs, stream the log on
failure and stop it gracefully.

Usable as a context manager (tests, ``mangaassist serve``, the run command)::

    with TritonServer(repo_dir).start() as triton:
        client = tritonclient.grpc.InferenceServerClient(triton.grpc_url)

The python backend's stub embeds libpython and starts isolated, so the server process gets this
interpreter's ``bin/`` first on ``PATH`` (the stub derives its prefix and site-packages from it, the way
pytriton's own launcher does) and the interpreter's ``lib/`` on ``LD_LIBRARY_PATH``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path
from typing import Sequence

LOG = logging.getLogger(__name__)


class TritonStartupError(RuntimeError):
    """tritonserver exited or did not become ready in time. The message carries the log tail."""


def _pytriton_root() -> Path:
    import pytriton  # the wheel carries the server; importing it only locates files

    return Path(pytriton.__file__).resolve().parent


def tritonserver_binary() -> Path:
    return _pytriton_root() / "tritonserver" / "bin" / "tritonserver"


def _server_libs_dir() -> Path:
    root = _pytriton_root()
    for candidate in (root / "tritonserver" / "external_libs", root.parent / "nvidia_pytriton.libs"):
        if candidate.is_dir():
            return candidate
    raise TritonStartupError("nvidia-pytriton's bundled libraries were not found; is nvidia-pytriton installed?")


def prepare_backends(dest: Path) -> Path:
    """Lay out ``dest/python`` with the python backend and the stub matching this interpreter.

    Triton loads ``<backend-dir>/python/libtriton_python.so`` and expects the stub beside it.
    Idempotent: files are (re)copied only when missing or changed in size.
    """
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    root = _pytriton_root() / "tritonserver"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise TritonStartupError(f"no python backend stub for Python {version} in nvidia-pytriton")
    target = dest / "python"
    target.mkdir(parents=True, exist_ok=True)
    for src in [*sorted((root / "backends" / "python").glob("*.*")), stub]:
        if src.is_dir():
            continue
        dst = target / src.name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            shutil.copy2(src, dst)
    return dest


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the server process so the python backend stub imports this venv's packages."""
    env = dict(os.environ if base is None else base)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}"
    libs = [str(_server_libs_dir())]
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        libs.append(libdir)
    if env.get("LD_LIBRARY_PATH"):
        libs.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = ":".join(libs)
    # The models' ONNX Runtime sessions set their own thread counts; keep OpenMP from oversubscribing.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


class TritonServer:
    """A real tritonserver child process on loopback ports."""

    def __init__(
        self,
        model_repository: Path | str,
        *,
        workdir: Path | str | None = None,
        grpc_port: int = 0,
        http_port: int = 0,
        metrics_port: int = 0,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 300.0,
        exit_timeout_s: int = 20,
        log_verbose: int = 0,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.model_repository = Path(model_repository).resolve()
        self._workdir = Path(workdir) if workdir else None
        self._ports = {"grpc": grpc_port, "http": http_port, "metrics": metrics_port}
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.exit_timeout_s = exit_timeout_s
        self.log_verbose = log_verbose
        self.extra_args = tuple(extra_args)
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_path: Path | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    # ---------------------------------------------------------------- URLs
    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self._ports['grpc']}"

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self._ports['http']}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self._ports['metrics']}/metrics"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    # ---------------------------------------------------------------- lifecycle
    def command(self, backend_dir: Path) -> list[str]:
        return [
            str(tritonserver_binary()),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={backend_dir}",
            f"--grpc-port={self._ports['grpc']}",
            f"--http-port={self._ports['http']}",
            f"--metrics-port={self._ports['metrics']}",
            f"--grpc-address={self.host}",
            f"--http-address={self.host}",
            "--model-control-mode=none",
            "--strict-readiness=true",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            f"--log-verbose={self.log_verbose}",
            "--allow-metrics=true",
            "--allow-gpu-metrics=false",
            "--metrics-config=summary_latencies=true",
            *self.extra_args,
        ]

    def start(self) -> "TritonServer":
        if self._proc is not None:
            raise RuntimeError("TritonServer already started")
        if not (self.model_repository.is_dir() and any(self.model_repository.iterdir())):
            raise TritonStartupError(
                f"model repository {self.model_repository} is missing or empty; build it first "
                "(`python -m model_repository build`)"
            )
        if self._workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="mangaassist-triton-")
            self._workdir = Path(self._tmp.name)
        self._workdir.mkdir(parents=True, exist_ok=True)
        backend_dir = prepare_backends(self._workdir / "backends")
        for name, port in self._ports.items():
            if not port:
                self._ports[name] = free_port()
        self._log_path = self._workdir / "tritonserver.log"
        log_file = open(self._log_path, "wb")  # noqa: SIM115 - owned by the child for its lifetime
        LOG.info("starting tritonserver (grpc %s, http %s) on %s", self.grpc_url, self.http_url, self.model_repository)
        self._proc = subprocess.Popen(
            self.command(backend_dir),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=server_environment(self._env),
            cwd=self._workdir,
            start_new_session=True,  # a Ctrl-C in the terminal goes to us; we stop the server ourselves
        )
        log_file.close()
        atexit.register(self.stop)
        try:
            self.wait_ready(self.startup_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def is_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def is_ready(self, timeout_s: float = 1.0) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=timeout_s) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_alive():
                code = self._proc.returncode if self._proc else None
                raise TritonStartupError(f"tritonserver exited with code {code} during start-up:\n{self.log_tail()}")
            if self.is_ready():
                LOG.info("tritonserver ready after %.1fs", timeout_s - (deadline - time.monotonic()))
                return
            time.sleep(0.25)
        raise TritonStartupError(f"tritonserver not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        if not self._log_path or not self._log_path.exists():
            return "(no log)"
        with open(self._log_path, "rb") as fh:
            tail = deque(fh, maxlen=lines)
        return b"".join(tail).decode("utf-8", errors="replace")

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM, wait for Triton's own graceful exit, then SIGKILL the process group if needed."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        wait_s = timeout_s if timeout_s is not None else self.exit_timeout_s + 10
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                LOG.warning("tritonserver did not exit in %.0fs; killing", wait_s)
        # Kill the whole group: python backend stubs are children of the server.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL the server and its stubs without a graceful exit (for failure tests)."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)

    def __enter__(self) -> "TritonServer":
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
