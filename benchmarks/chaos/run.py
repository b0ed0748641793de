"""Chaos: open-loop Chat load on the embedded default while tritonserver is SIGKILLed under the service.

    python -m benchmarks.chaos.run [--rate 10] [--duration 60] [--kill-at 15] [--build-dir .build]
                                   [--out benchmarks/results/chaos]

The service runs as production runs it on one box (``python -m server --launch-triton``: the built CPU
repository, production budgets, template tier). Arrivals are Poisson (``benchmarks.service.load``'s, so
a slow service does not slow the client: no coordinated omission); readiness is polled every 100 ms beside
them. At ``--kill-at`` seconds the Triton child gets SIGKILL, as the OOM killer would send it.

Each answer is one of: **models** (OK, and the classifier and retrieval answered), **degraded** (OK without
them: ``classifier_unavailable`` / ``retrieval_unavailable``, the rules + template path), **error** (a
non-OK status). Answers the rule fast path decided never touch a model and count as models-or-degraded
only by their status. ``rerank_skipped`` is the CPU default (docs/serving-speed.md) and not counted as degraded.

Reported: error and degraded fractions before the kill, from the kill to recovery, and after; readiness
NOT_SERVING delay and time back to SERVING; **time to recovery** = from the kill to the first of 5
consecutive model-answered chats; and the stubs of the killed Triton still alive afterwards (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from benchmarks import common
from benchmarks.chaos.process import ServeProcess, wait_group_empty, warm_service
from benchmarks.service.load import poisson_arrivals

log = logging.getLogger("benchmarks.chaos")

MODEL_DEGRADED = ("classifier_unavailable", "retrieval_unavailable")
RECOVERED_AFTER = 5  # consecutive model-answered chats


def classify_reply(code: str, degraded: Sequence[str], rule_decided: bool) -> str:
    if code != "OK":
        return "error"
    if any(r in MODEL_DEGRADED for r in degraded):
        return "degraded"
    return "rule" if rule_decided else "models"


async def run_chaos(
    serve: ServeProcess, messages: Sequence[str], *, rate: float, duration_s: float, kill_at_s: float,
    timeout_s: float = 2.0, seed: int = 0, settle_s: float = 60.0,
) -> dict[str, Any]:
    """Drive ``rate`` chats/s for ``duration_s``, SIGKILL Triton at ``kill_at_s``; times are seconds from
    the first arrival."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from mangaassist.v1 import mangaassist_pb2 as pb
    from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

    loop = asyncio.get_running_loop()
    arrivals = poisson_arrivals(rate, duration_s, random.Random(seed))
    requests: list[dict[str, Any]] = []
    readiness: list[tuple[float, str]] = []
    killed: dict[str, Any] = {}
    start = loop.time()

    async with grpc.aio.insecure_channel(serve.target) as channel:
        stub, health = pb_grpc.MangaAssistStub(channel), health_pb2_grpc.HealthStub(channel)

        async def one(i: int, offset: float) -> None:
            sent = loop.time()
            request = pb.ChatRequest(message=messages[i % len(messages)], session_id=f"chaos-{i}")
            try:
                reply = await stub.Chat(request, timeout=timeout_s)
                code, degraded, rule = "OK", list(reply.degraded), bool(reply.rule_decided)
            except grpc.aio.AioRpcError as err:
                code, degraded, rule = err.code().name, [], False
            requests.append({"t": round(offset, 3), "ms": round((loop.time() - sent) * 1000, 1), "code": code,
                             "degraded": degraded, "kind": classify_reply(code, degraded, rule)})

        async def poll_readiness(until: float) -> None:
            while loop.time() < until:
                try:
                    reply = await health.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=0.5)
                    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                except grpc.aio.AioRpcError as err:
                    status = err.code().name
                readiness.append((round(loop.time() - start, 3), status))
                await asyncio.sleep(0.1)

        async def kill() -> None:
            await asyncio.sleep(kill_at_s)
            pid, members = serve.kill_triton()
            killed.update(t=round(loop.time() - start, 3), pid=pid, stubs=len([m for m in members if m[0] != pid]))
            log.info("SIGKILL tritonserver %d (%d stubs) at %.1fs", pid, killed["stubs"], killed["t"])

        poller = asyncio.create_task(poll_readiness(start + duration_s + settle_s))
        killer = asyncio.create_task(kill())
        tasks = []
        for i, offset in enumerate(arrivals):
            delay = start + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, offset)))
        await asyncio.gather(*tasks, killer)
        # keep polling until readiness is back (or settle_s ran out), so recovery is measured even when the
        # restart outlasts the load
        while not poller.done() and not _back(readiness, killed.get("t", 0.0)):
            await asyncio.sleep(0.1)
        poller.cancel()
    left = await asyncio.to_thread(wait_group_empty, killed["pid"], 10.0)
    return summarise(sorted(requests, key=lambda r: r["t"]), readiness, killed, left, rate, duration_s)


def _back(readiness: list[tuple[float, str]], t_kill: float) -> bool:
    down = [t for t, s in readiness if t >= t_kill and s != "SERVING"]
    return bool(down) and any(t > down[0] and s == "SERVING" for t, s in readiness)


def _fractions(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    kinds = Counter(r["kind"] for r in rows)
    n = len(rows)
    return {"requests": n, **{k: kinds.get(k, 0) for k in ("models", "rule", "degraded", "error")},
            "error_fraction": round(kinds["error"] / n, 4) if n else None,
            "degraded_fraction": round(kinds["degraded"] / n, 4) if n else None}


def summarise(requests: list[dict[str, Any]], readiness: list[tuple[float, str]], killed: dict[str, Any],
              stubs_left: list[tuple[int, str]], rate: float, duration_s: float) -> dict[str, Any]:
    t_kill = killed["t"]
    down = next((t for t, s in readiness if t >= t_kill and s != "SERVING"), None)
    up = next((t for t, s in readiness if down is not None and t > down and s == "SERVING"), None)
    after = [r for r in requests if r["t"] >= t_kill and r["kind"] != "rule"]
    recovered = None
    for i in range(len(after) - RECOVERED_AFTER + 1):
        if all(r["kind"] == "models" for r in after[i : i + RECOVERED_AFTER]):
            recovered = after[i]["t"]
            break
    end = recovered if recovered is not None else float("inf")
    timeline: dict[int, Counter[str]] = {}
    for r in requests:
        timeline.setdefault(int(r["t"]), Counter())[r["kind"]] += 1
    return {
        "rate": rate,
        "duration_s": duration_s,
        "kill": killed,
        "readiness_not_serving_after_s": round(down - t_kill, 3) if down is not None else None,
        "readiness_serving_again_after_s": round(up - t_kill, 3) if up is not None else None,
        "time_to_recovery_s": round(recovered - t_kill, 3) if recovered is not None else None,
        "overall": _fractions(requests),
        "before_kill": _fractions([r for r in requests if r["t"] < t_kill]),
        "kill_to_recovery": _fractions([r for r in requests if t_kill <= r["t"] < end]),
        "after_recovery": _fractions([r for r in requests if r["t"] >= end]),
        "errors_by_code": dict(Counter(r["code"] for r in requests if r["code"] != "OK")),
        "stubs_left_alive": len(stubs_left),
        "timeline_per_s": {t: dict(c) for t, c in sorted(timeline.items())},
        "readiness": readiness,
    }


def render(result: dict[str, Any], device: dict[str, Any], command: str) -> str:
    rows = []
    for name in ("before_kill", "kill_to_recovery", "after_recovery", "overall"):
        f = result[name]
        rows.append([name.replace("_", " "), f["requests"], f["models"], f["rule"], f["degraded"], f["error"],
                     f"{100 * (f['degraded_fraction'] or 0):.1f}%", f"{100 * (f['error_fraction'] or 0):.1f}%"])
    k = result["kill"]
    return "\n".join([
        "# Chaos: tritonserver SIGKILLed under load",
        "",
        f"Measured on {device['cpu_model']} ({device['usable_cores']} usable cores), {device['timestamp_utc']}; "
        "load generator, service and Triton share the cores.",
        f"Command: `{command}`",
        "",
        f"{result['rate']:.0f} chats/s (Poisson) for {result['duration_s']:.0f} s; tritonserver (pid {k['pid']}, "
        f"{k['stubs']} python-backend stubs) SIGKILLed at {k['t']:.1f} s.",
        "",
        common.markdown_table(("window", "chats", "models", "rule path", "degraded", "errors", "degraded %", "error %"), rows),
        "",
        f"- readiness NOT_SERVING {result['readiness_not_serving_after_s']} s after the kill; SERVING again after "
        f"{result['readiness_serving_again_after_s']} s",
        f"- time to recovery (kill -> first of {RECOVERED_AFTER} consecutive model-answered chats): "
        f"{result['time_to_recovery_s']} s",
        f"- errors by code: {result['errors_by_code'] or 'none'}",
        f"- stubs of the killed Triton still alive afterwards: {result['stubs_left_alive']}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10.0, help="chats per second (Poisson)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of arrivals")
    parser.add_argument("--kill-at", type=float, default=15.0, help="SIGKILL tritonserver this many seconds in")
    parser.add_argument("--timeout", type=float, default=2.0, help="gRPC deadline per chat (s)")
    parser.add_argument("--request-path-only", action="store_true", help="serve without the LLM and scorer models")
    parser.add_argument("--build-dir", type=Path, default=common.DEFAULT_BUILD_DIR)
    parser.add_argument("--out", type=Path, default=common.DEFAULT_RESULTS_DIR / "chaos")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    build, out = args.build_dir.resolve(), args.out.resolve()
    command = "python -m benchmarks.chaos.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    with warm_service(build, "chaos", request_path_only=args.request_path_only) as (serve, messages):
        started = time.perf_counter()
        result = asyncio.run(run_chaos(serve, messages, rate=args.rate, duration_s=args.duration,
                                       kill_at_s=args.kill_at, timeout_s=args.timeout))
        result["wall_s"] = round(time.perf_counter() - started, 1)
    device = common.device_info()
    common.write_json(out / "chaos.json", {"device": device, "command": command, **result})
    (out / "chaos.md").write_text(render(result, device, command) + "\n")
    print((out / "chaos.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
