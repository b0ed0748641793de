"""Locate the ``perf_analyzer`` binary that the ``tritonclient==2.51.0`` wheel ships, and the environment
it needs to start on this machine (libb64-0d: docs/running-and-testing.md, "What set-up does"):

* the wheel installs it as a data script (``<venv>/bin/perf_analyzer``), sometimes without the x bit;
* it links ``libb64.so.0d`` (Debian: ``apt-get install libb64-0d``) and ``libcudart.so.12`` even on CPU,
  which ``nvidia-cuda-runtime-cu12`` provides in ``site-packages/nvidia/cuda_runtime/lib``.
"""

from __future__ import annotations

import ctypes.util
import glob
import os
import stat
import sys
import sysconfig
from pathlib import Path
from typing import Callable, Sequence


class PerfAnalyzerUnavailable(RuntimeError):
    """perf_analyzer cannot run here; the message says what to install."""


def _candidates() -> list[Path]:
    scripts = sysconfig.get_path("scripts")
    out = [Path(scripts) / "perf_analyzer", Path(sys.executable).parent / "perf_analyzer"]
    try:  # the wheel's RECORD names the file, wherever the scheme put it
        from importlib.metadata import files

        for f in files("tritonclient") or []:
            if f.name == "perf_analyzer":
                out.append(Path(f.locate()).resolve())
    except Exception:  # noqa: BLE001 -- metadata is a best-effort extra place to look
        pass
    return out


def perf_analyzer_binary() -> Path:
    """The perf_analyzer executable from the tritonclient wheel, made executable if it was not."""
    for path in _candidates():
        if path.is_file():
            mode = path.stat().st_mode
            if not mode & stat.S_IXUSR:
                path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            return path
    raise PerfAnalyzerUnavailable(
        "perf_analyzer not found: install the wheel that carries it, `pip install tritonclient[all]==2.51.0` "
        "(2.52-2.60 need glibc 2.38, 2.61+ carry no binary)"
    )


def cuda_runtime_lib_dir() -> Path | None:
    """``site-packages/nvidia/cuda_runtime/lib`` (libcudart.so.12), when nvidia-cuda-runtime-cu12 is installed."""
    for base in {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}:
        path = Path(base) / "nvidia" / "cuda_runtime" / "lib"
        if glob.glob(str(path / "libcudart.so*")):
            return path
    return None


LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/lib")


def check_libb64(dirs: Sequence[str] = LIB_DIRS, find_library: Callable[[str], str | None] = ctypes.util.find_library) -> None:
    """Fail with the fix when libb64 (which perf_analyzer links) is not installed."""
    found = find_library("b64") or any(Path(d, "libb64.so.0d").exists() for d in dirs)
    if not found:
        raise PerfAnalyzerUnavailable(
            "perf_analyzer needs libb64.so.0d, which is not installed: run `apt-get install libb64-0d`"
        )


def perf_analyzer_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for running perf_analyzer: the CUDA runtime's lib dir first on LD_LIBRARY_PATH."""
    check_libb64()
    env = dict(os.environ if base is None else base)
    cudart = cuda_runtime_lib_dir()
    if cudart is None:
        raise PerfAnalyzerUnavailable(
            "perf_analyzer links libcudart.so.12 even on CPU: `pip install nvidia-cuda-runtime-cu12` "
            "(its site-packages/nvidia/cuda_runtime/lib goes on LD_LIBRARY_PATH)"
        )
    parts = [str(cudart)] + [p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p]
    env["LD_LIBRARY_PATH"] = ":".join(dict.fromkeys(parts))
    return env
