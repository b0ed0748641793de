"""Triton cost per inference, measured: the request-path models on a real tritonserver, driven like the chat path
drives them (classify + embed, then the adapter, one message per call, ``--concurrency`` callers) for
``--seconds``; Triton's own counters before and after give each model's busy time and inferences, and
server/traffic/cost.py spreads the instance price over them (the service's TritonCostMonitor does the same every
``costs.interval_s``).

    .venv/bin/python -m benchmarks.drift.triton_cost [--seconds 30] [--concurrency 2] [--usd-per-hour 1.006]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks import common


async def drive(url: str, texts: list[str], seconds: float, concurrency: int) -> int:
    from server.backends.triton import TritonBackend
    from server.settings import TritonSettings

    backend = TritonBackend(TritonSettings(url=url))
    calls = 0
    deadline = time.monotonic() + seconds

    async def caller(k: int) -> None:
        nonlocal calls
        i = k
        while time.monotonic() < deadline:
            text = texts[i % len(texts)]
            _, vector = await asyncio.gather(backend.classify([text], timeout_s=5), backend.embed([text], timeout_s=5))
            await backend.adapt(vector, timeout_s=5)
            calls += 1
            i += concurrency

    try:
        await asyncio.gather(*(caller(k) for k in range(concurrency)))
    finally:
        await backend.close()
    return calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--usd-per-hour", type=float, default=1.006)
    parser.add_argument("--capacity", type=float, default=2.0, help="inference-seconds per second: the CPU cores")
    args = parser.parse_args(argv)
    from benchmarks.chaos.process import request_path_build
    from server.traffic.cost import ensemble_names, parse_triton_metrics, triton_cost
    from server.triton_runtime import TritonServer

    build = common.ROOT / ".build"
    texts = common.intent_texts(build / "data", limit=500)
    with tempfile.TemporaryDirectory(prefix="lc2-triton-cost-") as scratch:
        repo = request_path_build(build, Path(scratch)) / "triton" / "cpu"
        ensembles = ensemble_names(repo)
        with TritonServer(repo) as triton:
            get = lambda: urllib.request.urlopen(triton.metrics_url, timeout=5).read().decode()  # noqa: E731
            asyncio.run(drive(triton.grpc_url, texts[:20], 5.0, args.concurrency))  # warm-up, not counted
            before = parse_triton_metrics(get(), time.monotonic())
            calls = asyncio.run(drive(triton.grpc_url, texts, args.seconds, args.concurrency))
            after = parse_triton_metrics(get(), time.monotonic())
    cost = triton_cost(before, after, args.usd_per_hour, args.capacity, ensembles)
    out = {
        "usd_per_hour": args.usd_per_hour, "capacity": args.capacity, "concurrency": args.concurrency,
        "seconds": round(cost.seconds, 1), "chat_paths": calls, "chat_paths_per_s": round(calls / cost.seconds, 1),
        "utilisation": round(cost.utilisation, 3), "ensembles": sorted(ensembles),
        "models": {m: {"inferences": int(cost.inferences.get(m, 0)),
                       "usd_per_inference": float(f"{cost.per_inference_usd[m]:.3g}"),
                       "usd_per_inference_at_full_utilisation": float(f"{cost.per_inference_full_usd[m]:.3g}")}
                   for m in sorted(cost.per_inference_usd)},
        "usd_per_chat_path": float(f"{args.usd_per_hour / 3600 * cost.seconds / max(1, calls):.3g}"),
        "device": common.device_info(),
    }
    common.write_json(common.DEFAULT_RESULTS_DIR / "drift" / "triton_cost.json", out)
    print(json.dumps({k: v for k, v in out.items() if k != "device"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
