"""Reproduce (and size the fix for) the ~500 ms latency stalls seen with dynamic batching on.

    python -m benchmarks.perf_analyzer.queue_stall [--repo .build/triton/cpu] [--seconds 8]

What it shows: Triton's dynamic batcher can only *prefetch* a payload when the model has no queue policy
(no ``max_queue_size``, no timeouts). With a ``default_queue_policy`` -- which our specs set on purpose,
to bound every queue -- an enqueue wakes the batcher only if an instance slot is free right then. A
request that arrives while every instance is busy therefore sits until the batcher's idle wait (500 ms)
runs out, even at concurrency 1 (the client's next request can arrive before the finished instance is
handed back). More instances make stalls rarer, not impossible; see the results file for the trade-off.

The experiment serves one cheap model (``embedding_adapter``, sub-millisecond compute, so any long wait is
scheduling, not compute) from a scratch repository in several configurations and drives it with closed-
loop tritonclient gRPC workers (perf_analyzer reports percentiles, not the count of 400 ms+ stalls, and
does not stabilise on a busy 2-core box). Results: ``benchmarks/results/queue_stall.{json,md}``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.common import DEFAULT_BUILD_DIR, DEFAULT_RESULTS_DIR, device_info, latency_summary, markdown_table, write_json

MODEL = "embedding_adapter"
STALL_MS = 400.0


def _instances(n: int) -> Callable[[str], str]:
    return lambda cfg: re.sub(r"(instance_group \{\n  count: )\d+", rf"\g<1>{n}", cfg)


def _no_policy(cfg: str) -> str:
    return re.sub(r"  default_queue_policy \{.*?\n  \}\n", "", cfg, flags=re.S)


def _no_batching(cfg: str) -> str:
    return re.sub(r"dynamic_batching \{.*?\n\}\n", "", cfg, flags=re.S)


#: name -> (what it is, config rewrite)
VARIANTS: dict[str, tuple[str, Callable[[str], str]]] = {
    "policy_1_instance": ("bounded queue policy, 1 instance", _instances(1)),
    "no_policy_1_instance": ("no queue policy, 1 instance", lambda c: _no_policy(_instances(1)(c))),
    "no_batching_1_instance": ("dynamic batching off, 1 instance", lambda c: _no_batching(_instances(1)(c))),
    "policy_2_instances": ("bounded queue policy, 2 instances (shipped)", _instances(2)),
    "policy_4_instances": ("bounded queue policy, 4 instances", _instances(4)),
}


def drive(url: str, concurrency: int, seconds: float) -> list[float]:
    """Closed-loop: ``concurrency`` threads, each sending one request after the previous answer."""
    import tritonclient.grpc as grpcclient

    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        client = grpcclient.InferenceServerClient(url)
        tensor = grpcclient.InferInput("EMBEDDING", [1, 384], "FP32")
        tensor.set_data_from_numpy(np.random.default_rng(0).random((1, 384), dtype=np.float32))
        mine = []
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            client.infer(MODEL, [tensor])
            mine.append((time.perf_counter() - start) * 1000)
        client.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def run(repo_dir: Path, seconds: float, concurrencies: tuple[int, ...], variants: list[str]) -> list[dict[str, Any]]:
    from server.triton_runtime import TritonServer

    source = repo_dir / MODEL
    if not source.exists():
        raise SystemExit(f"{source} is missing: run `python -m model_repository build` first")
    rows = []
    with tempfile.TemporaryDirectory(prefix="queue_stall_") as tmp:
        for name in variants:
            what, rewrite = VARIANTS[name]
            repo = Path(tmp) / name
            shutil.copytree(source, repo / MODEL)
            cfg_path = repo / MODEL / "config.pbtxt"
            cfg_path.write_text(rewrite(cfg_path.read_text()))
            with TritonServer(repo) as triton:
                for concurrency in concurrencies:
                    ms = drive(triton.grpc_url, concurrency, seconds)
                    row = {
                        "variant": name, "what": what, "concurrency": concurrency, "requests": len(ms),
                        "infer_per_s": round(len(ms) / seconds, 1), **latency_summary(ms),
                        "max_ms": round(max(ms), 1), f"stalls_over_{int(STALL_MS)}ms": int(sum(m > STALL_MS for m in ms)),
                    }
                    rows.append(row)
                    print(f"[queue_stall] {name} c={concurrency}: {row['infer_per_s']} infer/s, "
                          f"p99 {row.get('p99_ms')} ms, max {row['max_ms']} ms, stalls {row[f'stalls_over_{int(STALL_MS)}ms']}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.perf_analyzer.queue_stall", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_BUILD_DIR / "triton" / "cpu", help="built CPU repository")
    parser.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args(argv)
    concurrencies = tuple(int(c) for c in args.concurrency.split(","))
    rows = run(args.repo, args.seconds, concurrencies, args.variants.split(","))
    device = device_info()
    write_json(args.out / "queue_stall.json", {"device": device, "seconds": args.seconds, "rows": rows})
    stall = f"stalls_over_{int(STALL_MS)}ms"
    table = markdown_table(
        ["config", "concurrency", "infer/s", "p50 ms", "p99 ms", "max ms", f"requests > {int(STALL_MS)} ms"],
        [[r["what"], r["concurrency"], r["infer_per_s"], r.get("p50_ms"), r.get("p99_ms"), r["max_ms"], r[stall]] for r in rows],
    )
    (args.out / "queue_stall.md").write_text(
        "# Dynamic batcher stalls with a bounded queue policy\n\n"
        f"Measured on {device['cpu_model']} ({device['usable_cores']} usable cores, {device['gpu']}), {device['timestamp_utc']}, "
        f"load average at start {device['load_average_at_start']}; "
        f"`{MODEL}` from the built CPU repository, closed-loop gRPC clients, {args.seconds:g} s per point.\n"
        f"Command: `python -m benchmarks.perf_analyzer.queue_stall`\n\n{table}\n"
    )
    print(f"[queue_stall] wrote {args.out / 'queue_stall.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
