"""Where the cores go during a perf_analyzer run: CPU seconds per process, as shares of the machine.

The in-process ONNX Runtime ceiling has every core to itself. A served run shares them between the ONNX
model's python-backend stub (where ONNX Runtime runs), the tokenizer's stub, tritonserver itself (gRPC,
the ensemble and the batcher) and the load generator. Measuring each one's CPU time over the run says how
much of the machine the model got, which bounds the served/ceiling ratio on a machine this size.

* tritonserver and its python-backend stubs: ``psutil`` CPU times (user + system) of the server process and
  its children, before and after the run; a stub is named by the model directory on its command line;
* perf_analyzer: ``resource.getrusage(RUSAGE_CHILDREN)`` around the run (it is the only child reaped then);
* steal: machine-wide CPU time the hypervisor gave to other guests (``psutil.cpu_times().steal``). On a shared
  VM it can be large and it changes from minute to minute, which moves every absolute number; CPU seconds
  per row do not count it, so they compare runs taken at different times.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Any, Mapping

import psutil

SERVER = "tritonserver"
CLIENT = "perf_analyzer"
STEAL = "steal"


def process_label(cmdline: list[str]) -> str:
    """``tritonserver``, or the model a python-backend stub serves (its ``.../<model>/<version>/model.py``)."""
    for arg in cmdline:
        path = Path(arg)
        if path.name == "model.py" and len(path.parts) >= 3:
            return path.parent.parent.name
    name = Path(cmdline[0]).name if cmdline else "?"
    return SERVER if name == SERVER else name


def _cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


class CpuMeter:
    """CPU seconds of tritonserver (``server_pid``) and each of its child processes, plus reaped children."""

    def __init__(self, server_pid: int) -> None:
        self.server = psutil.Process(server_pid)

    def snapshot(self) -> dict[str, float]:
        out = {SERVER: _cpu_seconds(self.server)}
        for child in self.server.children(recursive=True):
            try:
                label = process_label(child.cmdline())
                out[label] = out.get(label, 0.0) + _cpu_seconds(child)
            except psutil.NoSuchProcess:  # a stub that exited between listing and reading
                continue
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        out[CLIENT] = usage.ru_utime + usage.ru_stime
        out[STEAL] = getattr(psutil.cpu_times(), "steal", 0.0)
        return out


def cpu_shares(before: Mapping[str, float], after: Mapping[str, float], wall_s: float, cores: int | None = None) -> dict[str, Any]:
    """Each process's CPU seconds over the run (and the machine's ``steal``) as shares of the machine
    (``cores`` x ``wall_s``); ``idle`` is what is left (other processes on the box count as idle here)."""
    cores = cores or len(os.sched_getaffinity(0))
    capacity = max(wall_s, 1e-9) * cores
    seconds = {k: round(max(0.0, after.get(k, 0.0) - before.get(k, 0.0)), 3) for k in after}
    shares = {k: round(v / capacity, 4) for k, v in seconds.items()}
    shares["idle"] = round(max(0.0, 1.0 - sum(shares.values())), 4)
    return {"wall_s": round(wall_s, 2), "cores": cores, "cpu_seconds": seconds, "share": shares}
