"""Embedded Triton runtime: start the real ``tritonserver`` binary (from the nvidia-pytriton wheel) on free
loopback ports with a built model repository, wait for readiness, expose the URLs, stream the log on
failure and stop it gracefully.

Usable as a context manager (tests, ``mangaassist serve``, the run command)::

    with TritonServer(repo_dir).start() as triton:
        client = tritonclient.grpc.InferenceServerClient(triton.grpc_url)

The python backend's stub embeds libpython and starts isolated, so the server process gets this
interpreter's ``bin/`` first on ``PATH`` (the stub derives its prefix and site-packages from it, the way
pytriton's own launcher does) and the interpreter's ``lib/`` on ``LD_LIBRARY_PATH``.

No process outlives its owner, whatever kills it:

- tritonserver runs in its own process group (``start_new_session``); the python-backend stubs it forks
  (``triton_python_backend_stub``, one per model instance) stay in that group, so one ``killpg`` reaches all.
- tritonserver gets ``PR_SET_PDEATHSIG = SIGKILL``: when the thread that spawned it dies (the service is
  SIGKILLed or OOM-killed), the kernel kills it. It is set by a tiny exec wrapper (:data:`_DIE_WITH_PARENT`,
  this interpreter with ``-I -S``, ~20 ms) rather than ``preexec_fn``: the service forks with gRPC's threads
  running, where Python documents ``preexec_fn`` as unsafe (a child can deadlock on a lock a thread held),
  and the wheels that wrap prctl need build tools. Spawn from a long-lived thread (the event loop's):
  the signal follows the spawning *thread*.
- a stub watches its parent with ``kill(ppid, 0)`` every 300 ms and exits once tritonserver is gone -- but
  a SIGKILLed tritonserver that nobody reaps is a zombie, which still "exists": that is how 13 stubs (2.75
  GiB) outlived a ``kill -9`` under ``mangaassist serve``. So an exit is handled here by killing the group
  *before* reaping the leader (:meth:`TritonServer.reap`), while the zombie still pins the group id.
"""

from __future__ import annotations

import asyncio
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
from typing import Collection, Sequence

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


def free_port(avoid: Collection[int] = ()) -> int:
    """A free loopback port from the kernel's ephemeral range, never one in ``avoid``.

    The ephemeral range (``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999 by default) contains the
    service's own 50051: a pick is only free *now*, and a service that binds its port later can find it
    taken by the Triton launched for it. ``mangaassist serve`` binds its port before launching Triton, and
    passes its configured ports here too."""
    for _ in range(64):
        with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            return port
    raise OSError(f"no free port outside {sorted(avoid)}")


#: ``python -I -S -c _DIE_WITH_PARENT <parent pid> <binary> <args...>``: ask the kernel to SIGKILL this process
#: when its parent (the spawning thread) dies, then exec the binary (the setting survives exec).
_DIE_WITH_PARENT = """
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
    raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
if os.getppid() != int(sys.argv[1]):  # the parent died before prctl: nothing would kill us later
    os._exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


def _process_status(pid: int) -> tuple[int, str, str] | None:
    """(process group, state letter, command name) of ``pid`` from /proc, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after its last ')'
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    state, _ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
    return int(pgrp), state, comm


def group_members(pgid: int, *, include_zombies: bool = False) -> list[tuple[int, str]]:
    """``(pid, command name)`` of every process in process group ``pgid`` (zombies hold no memory and are
    left out unless asked for)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        status = _process_status(int(entry.name))
        if status and status[0] == pgid and (include_zombies or status[1] != "Z"):
            members.append((int(entry.name), status[2]))
    return sorted(members)


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
        die_with_parent: bool = True,
        avoid_ports: Collection[int] = (),
        model_control: str = "none",
    ) -> None:
        """``die_with_parent``: SIGKILL from the kernel when the spawning thread dies (module docstring).
        ``avoid_ports``: ports the free-port picks must not take (the service's own). ``model_control``:
        "none" (the model set fixed at start) or "explicit" (every model loaded at start, and the repository API
        loads new versions into the running server: model_repository/lifecycle/serving.py)."""
        if model_control not in ("none", "explicit"):
            raise ValueError(f"model_control {model_control!r}: 'none' or 'explicit'")
        self.model_control = model_control
        self.model_repository = Path(model_repository).resolve()
        self._workdir = Path(workdir) if workdir else None
        self._ports = {"grpc": grpc_port, "http": http_port, "metrics": metrics_port}
        self.host = host
        self.startup_timeout_s = startup_timeout_s
        self.exit_timeout_s = exit_timeout_s
        self.log_verbose = log_verbose
        self.extra_args = tuple(extra_args)
        self._env = env
        self.die_with_parent = die_with_parent
        self.avoid_ports = frozenset(avoid_ports)
        self.starts = 0  # processes spawned so far (1 + restarts)
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
            *(("--model-control-mode=explicit", "--load-model=*") if self.model_control == "explicit"
              else ("--model-control-mode=none",)),
            "--strict-readiness=true",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            f"--log-verbose={self.log_verbose}",
            "--allow-metrics=true",
            "--allow-gpu-metrics=false",
            "--metrics-config=summary_latencies=true",
            *self.extra_args,
        ]

    def start(self) -> "TritonServer":
        """Spawn tritonserver and wait for readiness (stopping it again when it does not get there)."""
        self.spawn()
        try:
            self.wait_ready(self.startup_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def spawn(self) -> "TritonServer":
        """Start the process and return at once (ports picked now, kept across :meth:`respawn`).

        Call it from a thread that lives as long as the server should (the event loop's): with
        ``die_with_parent`` the kernel kills the server when that thread exits."""
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
        for name, port in self._ports.items():
            if not port:
                self._ports[name] = free_port(self.avoid_ports | {p for p in self._ports.values() if p})
        self._log_path = self._workdir / "tritonserver.log"
        self._popen(mode="wb")
        atexit.register(self.stop)
        return self

    def respawn(self) -> "TritonServer":
        """Start a new process on the same ports after the last one died (the service's channel keeps its
        address). The old process's group must already be reaped (:meth:`reap`)."""
        if self._proc is not None:
            raise RuntimeError("the previous tritonserver has not been reaped")
        self._popen(mode="ab")
        atexit.register(self.stop)
        return self

    def _popen(self, mode: str) -> None:
        command = self.command(prepare_backends(self._workdir / "backends"))
        if self.die_with_parent:
            command = [sys.executable, "-I", "-S", "-c", _DIE_WITH_PARENT, str(os.getpid()), *command]
        self.starts += 1
        with open(self._log_path, mode) as log_file:  # the child keeps its own descriptor
            if mode == "ab":
                log_file.write(f"\n---- restart {self.starts - 1} ----\n".encode())
                log_file.flush()
            LOG.info("starting tritonserver (grpc %s, http %s, metrics %s) on %s", self.grpc_url, self.http_url,
                     self._ports["metrics"], self.model_repository)
            self._proc = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=server_environment(self._env),
                cwd=self._workdir,
                start_new_session=True,  # its own group (one killpg reaches the stubs); Ctrl-C comes to us
            )

    def exited(self) -> bool:
        """Whether the process has exited, *without reaping it*: a zombie leader keeps its group id from
        being reused until :meth:`reap` has killed the group."""
        return self._proc is None or self.exit_status() is not None

    def exit_status(self) -> str | None:
        """"exit code N" / "killed by SIGKILL" once the process has exited (not reaped), else None."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return None if proc is None else f"exit code {proc.returncode}"
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return "reaped elsewhere"
        if info is None:
            return None
        if info.si_code == os.CLD_EXITED:
            return f"exit code {info.si_status}"
        return f"killed by {signal.Signals(info.si_status).name}"

    def is_alive(self) -> bool:
        return self._proc is not None and not self.exited()

    async def wait_exit(self, poll_s: float = 0.5) -> None:
        """Return once the process has exited, leaving it unreaped. A pidfd makes it immediate (Linux >=
        5.3); otherwise it is polled every ``poll_s``."""
        proc = self._proc
        if proc is None:
            return
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            while not self.exited():
                await asyncio.sleep(poll_s)
            return
        exited = loop.create_future()
        loop.add_reader(fd, lambda: exited.done() or exited.set_result(None))
        try:
            if not self.exited():
                await exited
        finally:
            loop.remove_reader(fd)
            os.close(fd)

    def is_ready(self, timeout_s: float = 1.0) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=timeout_s) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def metrics_up(self, timeout_s: float = 1.0) -> bool:
        """Whether the metrics endpoint answers. Triton starts it *after* the HTTP endpoint (its
        ``StartEndpoints`` order), so ``/v2/health/ready`` can answer while ``/metrics`` still refuses."""
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=timeout_s) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout_s: float) -> None:
        """Wait until the server is ready and every endpoint it was started with answers (HTTP, metrics)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_alive():
                raise TritonStartupError(f"tritonserver exited during start-up ({self.exit_status()}):\n{self.log_tail()}")
            if self.is_ready() and self.metrics_up():
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

    def reap(self, wait_s: float = 10.0) -> tuple[int | None, list[tuple[int, str]]]:
        """SIGKILL the whole process group, then reap the leader: the stubs die with it instead of living on
        as orphans. Returns (the leader's exit code, the other members that were killed)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None, []
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        members = [m for m in group_members(proc.pid) if m[0] != proc.pid]
        # the leader is a zombie or alive here (never reaped), so its pid still names this group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)
        deadline = time.monotonic() + wait_s
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = group_members(proc.pid)
        if left:
            LOG.warning("tritonserver group %d still has %s after SIGKILL", proc.pid, left)
        return proc.returncode, members

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM, wait for Triton's own graceful exit, then SIGKILL the process group if needed."""
        proc, code = self._proc, None
        if proc is not None:
            wait_s = timeout_s if timeout_s is not None else self.exit_timeout_s + 10
            if not self.exited():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
                deadline = time.monotonic() + wait_s
                while not self.exited() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if not self.exited():
                    LOG.warning("tritonserver did not exit in %.0fs; killing", wait_s)
            code, _ = self.reap()  # stubs still shutting down go with the group
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return code

    def kill(self) -> None:
        """SIGKILL the server and its stubs without a graceful exit (for failure tests)."""
        if self._proc is not None:
            self.reap()

    def __enter__(self) -> "TritonServer":
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
