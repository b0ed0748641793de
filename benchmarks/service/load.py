"""Open-loop load on the service's Chat RPC: Poisson arrivals at fixed rates, end-to-end and per-stage latency.

    python -m benchmarks.service.load [--rates 5,10,20,40] [--duration 20] [--build-dir .build] [--out benchmarks/results]

Open loop: request *i* is sent at its scheduled arrival time whether or not earlier ones have answered (a
closed-loop client slows down with the server and hides queueing -- coordinated omission). Latency is
measured from the scheduled arrival, so client-side lateness counts against the service too. Messages
are the held-out intents test split in random order -- a realistic mix, so some take the rule fast path
(greetings, order tracking) and skip the models. Every intent is routed to the template tier (no LLM);
the service keeps its production budgets unless ``--generous-budgets`` is given, so under overload
it degrades (e.g. ``rerank_skipped``) or sheds (RESOURCE_EXHAUSTED / DEADLINE_EXCEEDED) the way it would in
production, and those outcomes are counted. Per-stage timings come from each response's StageTiming.
"""

from __future__ import annotations

import argparse
import json
import asyncio
import logging
import random
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmarks import common
from benchmarks.service.stack import Stack

log = logging.getLogger("benchmarks.service")


def poisson_arrivals(rate: float, duration_s: float, rng: random.Random) -> list[float]:
    """Arrival offsets (seconds from the start) of a Poisson process with ``rate`` per second."""
    if rate <= 0:
        raise ValueError(f"rate must be positive, got {rate}")
    out, t = [], rng.expovariate(rate)
    while t < duration_s:
        out.append(t)
        t += rng.expovariate(rate)
    return out


async def run_rate(
    target: str, messages: Sequence[str], rate: float, duration_s: float, *, timeout_s: float, seed: int = 0,
    request_for: Callable[[int, str], Any] | None = None, samples: bool = False,
    channel_options: Sequence[tuple[str, Any]] = (), warmup: int = 0,
) -> dict[str, Any]:
    """Drive ``rate`` req/s for ``duration_s`` and summarise what came back. ``request_for(i, message)``: the
    i-th ChatRequest (default: a fresh session per request); ``samples``: also return every OK request's
    latency and per-stage ms (``samples``: ``{"e2e_ms": [...], "stages_ms": {stage: [...]}}``);
    ``channel_options``: the client channel's (e.g. round_robin over ``ipv4:A,B,C``); ``warmup``: chats sent
    before the clock starts (one per subchannel connects them all)."""
    import grpc
    from mangaassist.v1 import mangaassist_pb2 as pb
    from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

    rng = random.Random(seed)
    arrivals = poisson_arrivals(rate, duration_s, rng)
    loop = asyncio.get_running_loop()
    e2e: list[float] = []
    send_lateness: list[float] = []
    stages: dict[str, list[float]] = {}
    outcomes: Counter[str] = Counter()
    degraded: Counter[str] = Counter()
    tiers: Counter[str] = Counter()
    rule_decided = 0
    rerank: Counter[str] = Counter()  # eligible: the chat retrieved candidates; applied: and the reranker ordered them

    async with grpc.aio.insecure_channel(target, options=list(channel_options)) as channel:
        stub = pb_grpc.MangaAssistStub(channel)
        for i in range(warmup):
            await stub.Chat(pb.ChatRequest(message=messages[i % len(messages)], session_id=f"warm-{seed}-{i}"), timeout=30)

        async def one(i: int, scheduled: float) -> None:
            nonlocal rule_decided
            send_lateness.append((loop.time() - scheduled) * 1000.0)
            message = messages[i % len(messages)]
            request = request_for(i, message) if request_for else pb.ChatRequest(message=message, session_id=f"load-{i}")
            try:
                reply = await stub.Chat(request, timeout=timeout_s)
            except grpc.aio.AioRpcError as err:
                outcomes[err.code().name] += 1
                return
            e2e.append((loop.time() - scheduled) * 1000.0)
            outcomes["OK"] += 1
            tiers[reply.tier] += 1
            rule_decided += reply.rule_decided
            for reason in reply.degraded:
                degraded[reason] += 1
            per_stage: dict[str, float] = {}
            for t in reply.timings:
                per_stage[t.stage] = per_stage.get(t.stage, 0.0) + t.ms
            for name, ms in per_stage.items():
                stages.setdefault(name, []).append(ms)
            if "retrieve" in per_stage:
                rerank["eligible"] += 1
                rerank["applied"] += "rerank" in per_stage and "rerank_skipped" not in reply.degraded

        start = loop.time()
        tasks = []
        for i, offset in enumerate(arrivals):
            delay = start + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, start + offset)))
        send_done = loop.time() - start
        await asyncio.gather(*tasks)
        drained = loop.time() - start

    sent = len(arrivals)
    return {
        "target_rate": rate,
        "duration_s": duration_s,
        "sent": sent,
        "offered_rate": round(sent / duration_s, 2),
        "achieved_rate": round(outcomes["OK"] / drained, 2) if drained > 0 else None,
        "send_phase_s": round(send_done, 2),
        "drain_s": round(drained - send_done, 2),
        "outcomes": dict(outcomes),
        "error_rate": round(1 - outcomes["OK"] / sent, 4) if sent else None,
        "e2e": common.latency_summary(e2e),
        "client_send_lateness_p99_ms": round(common.percentile(send_lateness, 99), 3) if send_lateness else None,
        "stages": {name: {**common.latency_summary(v), "share_of_ok": round(len(v) / max(1, outcomes["OK"]), 3)}
                   for name, v in sorted(stages.items())},
        "degraded": dict(degraded),
        "tiers": dict(tiers),
        "rule_decided_share": round(rule_decided / max(1, outcomes["OK"]), 3),
        "rerank_eligible": rerank["eligible"],
        "rerank_applied": rerank["applied"],
        "rerank_applied_share": round(rerank["applied"] / rerank["eligible"], 4) if rerank["eligible"] else None,
        **({"samples": {"e2e_ms": e2e, "stages_ms": stages}} if samples else {}),
    }


STAGE_ORDER = ("validation", "input_guard", "rules", "classify", "embed", "adapter", "retrieve", "rerank",
               "catalog", "answer", "output_guard")


def render(runs: Sequence[dict[str, Any]], device: dict[str, Any], command: str, stack_info: dict[str, Any]) -> str:
    rows = []
    for r in runs:
        bad = {k: v for k, v in r["outcomes"].items() if k != "OK"}
        rows.append([
            common.fmt(r["target_rate"], 0), common.fmt(r["offered_rate"], 1), common.fmt(r["achieved_rate"], 1),
            r["sent"], common.fmt(r["e2e"]["p50_ms"], 1), common.fmt(r["e2e"]["p99_ms"], 1),
            f"{100 * (r['error_rate'] or 0):.1f}%" + (f" {bad}" if bad else ""),
            f"{r['rerank_applied']}/{r['rerank_eligible']}" if r.get("rerank_eligible") else "—",
            ", ".join(f"{k}: {v}" for k, v in sorted(r["degraded"].items())) or "—",
        ])
    names = [s for s in STAGE_ORDER if any(s in r["stages"] for r in runs)]
    names += sorted({s for r in runs for s in r["stages"]} - set(names))
    stage_rows = []
    for name in names:
        cells = []
        for r in runs:
            s = r["stages"].get(name)
            cells.append(f"{s['p50_ms']:.1f} / {s['p99_ms']:.1f}" if s else "—")
        stage_rows.append([name, *cells])
    settings = stack_info.get("service_settings", {})
    budgets = "generous (no stage skipped)" if "total_ms" in settings.get("budgets", {}) and settings["budgets"]["total_ms"] >= 30000 else "production defaults"
    if "budgets" in settings and budgets == "production defaults":
        budgets += f", with {settings['budgets']}"
    return "\n".join([
        "# Open-loop load on Chat (template tier, no LLM)",
        "",
        f"Measured on {device['cpu_model']} ({device['usable_cores']} usable cores, {device['gpu']}), "
        f"{device['timestamp_utc']}; load generator, service and Triton share the cores. Budgets: {budgets}.",
        f"Command: `{command}`",
        "",
        common.markdown_table(("target rps", "offered rps", "achieved rps", "requests", "e2e p50 ms", "e2e p99 ms",
                               "errors", "reranked / eligible", "degraded"), rows),
        "e2e is measured from each request's scheduled (Poisson) arrival time to its response. Eligible: the chat"
        " retrieved candidates; reranked: the reranker ordered them within its budget.",
        "",
        "Per-stage service time, p50 / p99 ms (from the responses' StageTiming; only requests where the stage ran):",
        "",
        common.markdown_table(("stage", *[f"{common.fmt(r['target_rate'], 0)} rps" for r in runs]), stage_rows),
    ])


async def _run_all(target: str, messages: Sequence[str], rates: Sequence[float], duration: float, timeout_s: float,
                   pause_s: float) -> list[dict[str, Any]]:
    runs = []
    for i, rate in enumerate(rates):
        with common.quiet_round(f"rate {rate:g}") as q:
            result = await run_rate(target, messages, rate, duration, timeout_s=timeout_s, seed=i)
        result["quiet"] = q.quiet
        log.info("rate %5.1f: sent %d, ok %s, e2e p50 %.1f ms p99 %.1f ms, degraded %s", rate, result["sent"],
                 result["outcomes"].get("OK", 0), result["e2e"]["p50_ms"], result["e2e"]["p99_ms"], result["degraded"])
        runs.append(result)
        await asyncio.sleep(pause_s)  # let queues drain between rates
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="5,10,20,40", help="comma-separated requests/second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals per rate")
    parser.add_argument("--timeout", type=float, default=10.0, help="gRPC deadline per request (s)")
    parser.add_argument("--warmup", type=int, default=10, help="sequential requests before the first rate")
    parser.add_argument("--generous-budgets", action="store_true", help="no stage is ever skipped for budget")
    parser.add_argument("--build-dir", type=Path, default=common.DEFAULT_BUILD_DIR)
    parser.add_argument("--repo", type=Path, help="Triton repository (default: <build>/triton/cpu)")
    parser.add_argument("--out", type=Path, default=common.DEFAULT_RESULTS_DIR)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a service setting for this run, e.g. budgets.rerank_ms=200 (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    build = args.build_dir.resolve()
    out = args.out.resolve()
    command = "python -m benchmarks.service.load " + shlex.join(argv if argv is not None else sys.argv[1:])
    device = common.device_info()
    messages = common.intent_texts(build / "data", limit=1000)
    random.Random(0).shuffle(messages)
    stack = Stack(build, (args.repo or build / "triton" / "cpu").resolve(), out / "tmp" / "service",
                  generous_budgets=args.generous_budgets, overrides=parse_overrides(args.set))
    with stack:
        from clients.sdk import MangaAssistClient

        with MangaAssistClient(stack.target, timeout=60.0) as client:
            for i in range(args.warmup):
                client.chat(messages[i % len(messages)])
        started = time.perf_counter()
        runs = asyncio.run(_run_all(stack.target, messages, rates, args.duration, args.timeout, pause_s=2.0))
        wall = time.perf_counter() - started
        info = stack.info
    payload = {"device": device, "command": command, "stack": info, "wall_s": round(wall, 1), "runs": runs,
               "quietness": common.quietness()}
    common.write_json(out / "service_load.json", payload)
    (out / "service_load.md").write_text(common.with_quietness(render(runs, device, command, info), payload["quietness"]))
    print((out / "service_load.md").read_text())
    return 0


def parse_overrides(items: list[str]) -> dict[str, dict[str, object]]:
    """``["budgets.rerank_ms=200", "retrieval.rerank_top_n=5"]`` -> {"budgets": {"rerank_ms": 200}, ...}."""
    out: dict[str, dict[str, object]] = {}
    for item in items:
        key, _, raw = item.partition("=")
        section, _, name = key.partition(".")
        if not (section and name and raw):
            raise SystemExit(f"--set wants SECTION.KEY=VALUE, got {item!r}")
        try:
            value: object = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(section, {})[name] = value
    return out


if __name__ == "__main__":
    sys.exit(main())
