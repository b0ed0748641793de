"""What the cluster's shared state costs a chat (issue 24 Measure): one replica in-process vs three on Redis + PostgreSQL.

    python -m benchmarks.cluster [--rate 12] [--duration 20] [--rounds 3] [--build-dir .build]

One tritonserver (the built CPU repository without the off-path models: llm_small and the hallucination scorer,
as the chart tests serve it), one ``redis-server`` and one PostgreSQL (benchmarks/postgres_process.py), and three
set-ups of the ensemble service (``benchmarks.service.stack``: the production wiring, every intent on the template
tier) all started at once and kept up:

* ``one-memory``   -- one replica, ``state.backend: memory`` (the embedded default; the traffic log in SQLite);
* ``one-shared``   -- one replica, ``state.backend: redis`` (sessions, limits, feedback attribution, counters in
  Redis, the traffic log in PostgreSQL): the shared stores' cost alone;
* ``three-shared`` -- three replicas on the same Redis + PostgreSQL, called through ONE ``ipv4:A,B,C``
  ``round_robin`` channel (the cluster the chart deploys, squeezed onto this machine's cores).

Each round gives every set-up the same open-loop load, in a rotated order (interleaved, so a noisy minute on this
shared machine hits all of them): Poisson arrivals at ``--rate`` chats/s of intent messages, as conversations of
three turns from 50 customers, so every chat pays the shared-state calls a real one pays (both rate-limit buckets,
the history read, the turn written back, the feedback attribution record). Reported per set-up, pooled over the
rounds: chat p50/p99 (client-side, from the scheduled arrival), throughput, errors, and the ``session`` stage the
service times itself; plus, with nothing else running, each store's own cost per chat (the session store's
``begin`` + ``append``, the feedback attribution record's write). The machine's load average is recorded with
every window. Results: ``<out>/cluster/cluster.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from benchmarks import common
from benchmarks.service.load import run_rate
from benchmarks.service.stack import Stack
from benchmarks.sessions.redis_process import RedisProcess
from benchmarks.sessions.store_cost import CUSTOMERS, TURNS_PER_SESSION, store_calls

log = logging.getLogger("benchmarks.cluster")
SETUPS = ("one-memory", "one-shared", "three-shared")
#: Off the request path and slow to load on CPU: not served here (the service falls back as designed).
NOT_SERVED = ("llm_small", "hallucination_scorer", "hallucination_scorer_onnx", "hallucination_tokenizer")


@dataclass
class ReplicaStack(Stack):
    """The benchmark stack with the ``state`` section of a set-up and a traffic log of its own."""

    state: dict[str, Any] = field(default_factory=dict)

    def settings(self, port: int) -> dict[str, Any]:
        cfg = super().settings(port)
        cfg["state"] = dict(self.state)
        cfg["traffic"] = {"sqlite_path": str(self.scratch / "traffic.db")}  # used under state.backend memory only
        return cfg


def request_path_repository(build: Path, scratch: Path) -> Path:
    repo = scratch / "triton-repository"
    repo.mkdir(parents=True, exist_ok=True)
    for model in (build / "triton" / "cpu").iterdir():
        link = repo / model.name
        if model.name not in NOT_SERVED and not link.exists():
            link.symlink_to(model.resolve())
    return repo


async def window(target: str, messages: Sequence[str], rate: float, duration_s: float, *, tag: str, seed: int,
                 timeout_s: float = 10.0) -> dict[str, Any]:
    """``rate`` chats/s for ``duration_s`` through one channel (round_robin over ``ipv4:A,B,C`` targets):
    benchmarks.service.load's open-loop driver, with sessions of ``TURNS_PER_SESSION`` turns over ``CUSTOMERS``."""
    from mangaassist.v1 import mangaassist_pb2 as pb

    def request_for(i: int, message: str) -> Any:
        return pb.ChatRequest(message=message, session_id=f"{tag}-{i // TURNS_PER_SESSION}",
                              customer_id=f"C-{1000 + i % CUSTOMERS}")

    options = [("grpc.lb_policy_name", "round_robin")] if target.startswith("ipv4:") else []
    load_before = os.getloadavg()
    run = await run_rate(target, messages, rate, duration_s, timeout_s=timeout_s, seed=seed, request_for=request_for,
                         samples=True, channel_options=options, warmup=6)
    session = run["samples"]["stages_ms"].get("session", [])
    return {"sent": run["sent"], "outcomes": run["outcomes"], "degraded": run["degraded"],
            "throughput_per_s": run["achieved_rate"], "e2e": run["e2e"], "session_stage": common.latency_summary(session),
            "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "samples": {"e2e_ms": run["samples"]["e2e_ms"], "session_ms": session}}


async def feedback_record_calls(url: str, n: int = 2000) -> dict[str, Any]:
    """The attribution record a chat writes before its answer goes out (one Redis SET with a TTL), in sequence."""
    from server.rollout.feedback import SharedFeedbackStore

    store = SharedFeedbackStore(url, key_prefix="bench:", timeout_ms=1000)
    ms = []
    for i in range(n):
        t0 = time.perf_counter()
        await store.aremember(f"req-{i}", f"s-{i // TURNS_PER_SESSION}", versions={"intent_classifier_onnx": "1"},
                              intent="price_deal", confidence=0.9)
        ms.append((time.perf_counter() - t0) * 1000.0)
    await store.aclose()
    return {"calls": n, "write": common.latency_summary(ms)}


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    pooled = {}
    for setup in SETUPS:
        mine = [r for r in runs if r["setup"] == setup]
        chat = [v for r in mine for v in r["samples"]["e2e_ms"]]
        stage = [v for r in mine for v in r["samples"]["session_ms"]]
        errors = sum(n for r in mine for code, n in r["outcomes"].items() if code != "OK")
        pooled[setup] = {"ok": sum(r["outcomes"].get("OK", 0) for r in mine), "sent": sum(r["sent"] for r in mine),
                         "errors": errors, "throughput_per_s": round(sum(r["throughput_per_s"] or 0 for r in mine)
                                                                     / max(1, len(mine)), 2),
                         "chat": common.latency_summary(chat), "session_stage": common.latency_summary(stage)}
    base = pooled["one-memory"]["chat"]
    ratios = {setup: {q: round(pooled[setup]["chat"][f"{q}_ms"] / base[f"{q}_ms"], 3) for q in ("p50", "p99")}
              for setup in SETUPS}
    delta = {setup: {f"{what}_{q}_ms": round(pooled[setup][what][f"{q}_ms"] - pooled["one-memory"][what][f"{q}_ms"], 3)
                     for what in ("chat", "session_stage") for q in ("p50", "p99")} for setup in SETUPS[1:]}
    return {"pooled": pooled, "ratio_to_one_memory": ratios, "minus_one_memory": delta}


def render(payload: dict[str, Any]) -> str:
    s = payload["summary"]
    rows = [(setup, f"{p['ok']}/{p['sent']}", p["errors"], p["throughput_per_s"], common.fmt(p["chat"]["p50_ms"]),
             common.fmt(p["chat"]["p99_ms"]), f"{s['ratio_to_one_memory'][setup]['p50']:.2f} / "
             f"{s['ratio_to_one_memory'][setup]['p99']:.2f}", common.fmt(p["session_stage"]["p50_ms"], 3),
             common.fmt(p["session_stage"]["p99_ms"], 3)) for setup, p in s["pooled"].items()]
    iso = payload["isolated"]
    iso_rows = [("session store, in-process", common.fmt(iso["memory"]["begin"]["p50_ms"], 3),
                 common.fmt(iso["memory"]["begin"]["p99_ms"], 3), common.fmt(iso["memory"]["append"]["p50_ms"], 3),
                 common.fmt(iso["memory"]["append"]["p99_ms"], 3)),
                ("session store, Redis", common.fmt(iso["redis"]["begin"]["p50_ms"], 3),
                 common.fmt(iso["redis"]["begin"]["p99_ms"], 3), common.fmt(iso["redis"]["append"]["p50_ms"], 3),
                 common.fmt(iso["redis"]["append"]["p99_ms"], 3)),
                ("feedback attribution record, Redis", common.fmt(iso["feedback"]["write"]["p50_ms"], 3),
                 common.fmt(iso["feedback"]["write"]["p99_ms"], 3), "", "")]
    windows = [(r["round"], r["setup"], r["outcomes"].get("OK", 0), common.fmt(r["e2e"]["p50_ms"]),
                common.fmt(r["e2e"]["p99_ms"]), " ".join(map(str, r["loadavg_before"])), " ".join(map(str, r["loadavg_after"])))
               for r in payload["runs"]]
    return "\n".join([
        "# The cluster's shared state: one replica in-process vs three on Redis + PostgreSQL", "",
        f"`{payload['command']}`; {payload['device'].get('usable_cores')} usable cores "
        f"({payload['device'].get('cpu_model', '')}); {payload['rate']} chats/s for {payload['duration_s']} s per "
        f"window, {payload['rounds']} rounds, set-ups interleaved (rotated order). Client, Triton, Redis, PostgreSQL "
        "and all five service processes share these cores.", "",
        common.markdown_table(("set-up", "OK/sent", "errors", "chats/s", "chat p50 ms", "chat p99 ms",
                               "p50 / p99 vs one-memory", "session stage p50 ms", "session stage p99 ms"), rows), "",
        "## Each store's own cost per chat (sequential, nothing else running)", "",
        common.markdown_table(("store call", "p50 ms", "p99 ms", "append p50 ms", "append p99 ms"), iso_rows), "",
        "A chat under `state.backend: redis` makes three Redis round trips on its path: the session store's `begin` "
        "(both rate limits, block check, history) and `append` (the turn, before the answer goes out), and the "
        "feedback attribution record. The traffic log's PostgreSQL write is off the path (a background writer).", "",
        "## Windows (load average 1/5/15 min before and after each)", "",
        common.markdown_table(("round", "set-up", "OK", "p50 ms", "p99 ms", "load before", "load after"), windows), "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=12.0, help="chats per second (open loop)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals per window")
    parser.add_argument("--rounds", type=int, default=3, help="windows per set-up, interleaved")
    parser.add_argument("--build-dir", type=Path, default=common.DEFAULT_BUILD_DIR)
    parser.add_argument("--out", type=Path, default=common.DEFAULT_RESULTS_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from server.triton_runtime import TritonServer
    from benchmarks import postgres_process as postgres

    build, out = args.build_dir.resolve(), args.out.resolve()
    scratch = out / "tmp" / "cluster"
    messages = common.intent_texts(build / "data", limit=1000)
    random.Random(0).shuffle(messages)
    command = "python -m benchmarks.cluster " + shlex.join(argv if argv is not None else sys.argv[1:])
    runs: list[dict[str, Any]] = []
    stacks: dict[str, list[ReplicaStack]] = {}
    repository = request_path_repository(build, scratch)
    with RedisProcess() as redis, postgres.running_postgres() as dsn, \
            TritonServer(repository, startup_timeout_s=600) as triton:
        from server.sessions.store import MemorySessionStore, RedisSessionStore

        limits = {"rate_per_s": 100.0, "burst": 100, "customer_rate_per_s": 1000.0, "customer_burst": 1000}  # none hit
        isolated = {"memory": asyncio.run(store_calls(MemorySessionStore(**limits))),
                    "redis": asyncio.run(store_calls(RedisSessionStore(redis.url, key_prefix="iso:", timeout_ms=1000,
                                                                       **limits))),
                    "feedback": asyncio.run(feedback_record_calls(redis.url))}
        shared = {"backend": "redis", "redis_url": redis.url, "postgres_dsn": dsn}
        plan = {"one-memory": [{"backend": "memory"}], "one-shared": [shared], "three-shared": [shared] * 3}
        try:
            for setup, states in plan.items():  # all started at once: they share the cores' start-up time
                stacks[setup] = []
                for i, state in enumerate(states):
                    stack = ReplicaStack(build, repository, scratch / f"{setup}-{i}", generous_budgets=False,
                                         triton=triton, state=state)
                    stacks[setup].append(stack.start())
            targets = {setup: (s[0].target if len(s) == 1 else "ipv4:" + ",".join(x.target for x in s))
                       for setup, s in stacks.items()}
            for round_ in range(args.rounds):
                order = SETUPS[round_ % 3:] + SETUPS[:round_ % 3]
                for setup in order:
                    result = asyncio.run(window(targets[setup], messages, args.rate, args.duration,
                                                tag=f"{setup}-{round_}", seed=round_))
                    log.info("round %d %s: %s, p50 %.1f ms, p99 %.1f ms, load %s", round_, setup, result["outcomes"],
                             result["e2e"]["p50_ms"], result["e2e"]["p99_ms"], result["loadavg_after"])
                    runs.append({"setup": setup, "round": round_, **result})
        finally:
            for group in stacks.values():
                for stack in group:
                    stack.stop()
    payload = {"device": common.device_info(), "command": command, "rate": args.rate, "duration_s": args.duration,
               "rounds": args.rounds, "isolated": isolated, "summary": summarise(runs),
               "runs": [{k: v for k, v in r.items() if k != "samples"} for r in runs]}
    common.write_json(out / "cluster" / "cluster.json", payload)
    (out / "cluster" / "cluster.md").write_text(render(payload))
    print((out / "cluster" / "cluster.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
