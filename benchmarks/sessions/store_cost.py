"""What the session store costs a chat: the in-process store against a real Redis, in one run.

    python -m benchmarks.sessions.store_cost [--rate 40] [--duration 30] [--rounds 2] [--build-dir .build]

One tritonserver; the service is started once per store (``state.backend: memory`` / ``redis``, a real
``redis-server`` on a free loopback port), in turn, ``--rounds`` times each (interleaved, so a noisy minute
on this shared machine hits both). Each start gets the same open-loop load: Poisson arrivals at ``--rate``
chats/s of held-out intent messages, as conversations of three turns (one ``session_id``) from 50 customers
(``customer_id``), so every chat pays what a real one pays -- both rate-limit buckets, the block-list check,
the history read and the turn written back.

First, with nothing else running, the store's own cost: 2,000 chats' store calls in sequence (``begin`` before
the answer, ``append`` after), each timed. Then reported per store under load: chat latency (from the scheduled
arrival, client-side) and the ``session`` stage the service times itself (rate limits + block check + history
read; the write-back happens after the answer is composed and counts only in the chat latency). The figure the issue asks for is the difference, Redis minus
in-process, at p50 and p99: what the shared store adds to a chat. Results: ``<out>/sessions/store_cost.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmarks import common
from benchmarks.service.load import run_rate
from benchmarks.service.stack import Stack
from benchmarks.sessions.redis_process import RedisProcess

log = logging.getLogger("benchmarks.sessions")
TURNS_PER_SESSION = 3
CUSTOMERS = 50


@dataclass
class SessionStack(Stack):
    """The benchmark stack with a ``sessions`` settings section of our choosing."""

    state: dict[str, Any] = field(default_factory=dict)

    def settings(self, port: int) -> dict[str, Any]:
        return {**super().settings(port), "state": dict(self.state)}


def conversations(tag: str) -> Callable[[int, str], Any]:
    """Request i: turn i % 3 of conversation i // 3, from one of :data:`CUSTOMERS` customers."""
    from mangaassist.v1 import mangaassist_pb2 as pb

    def request(i: int, message: str) -> Any:
        return pb.ChatRequest(message=message, session_id=f"{tag}-{i // TURNS_PER_SESSION}",
                              customer_id=f"C-{1000 + i % CUSTOMERS}")

    return request


async def store_calls(store: Any, n: int = 2000) -> dict[str, Any]:
    """The store's own cost per chat, with nothing else running: ``n`` chats' store work in sequence -- the
    ``begin`` before the answer and the turn's ``append`` -- each timed on the client."""
    from server.sessions.store import Turn

    begin_ms, append_ms = [], []
    turn = Turn(message="how much is naruto vol 3?", intent="price_deal", series="Naruto", volume=3,
                asins=("B0NARUTO03",), tier="template", answer="Naruto, Vol. 3 is $9.99 and in stock. " * 4)
    for i in range(n):
        session, customer = f"iso-{i // TURNS_PER_SESSION}", f"C-{1000 + i % CUSTOMERS}"
        t0 = time.perf_counter()
        await store.begin(session, customer)
        t1 = time.perf_counter()
        await store.append(session, turn)
        append_ms.append((time.perf_counter() - t1) * 1000.0)
        begin_ms.append((t1 - t0) * 1000.0)
    await store.close()
    return {"calls": n, "begin": common.latency_summary(begin_ms), "append": common.latency_summary(append_ms)}


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pool the rounds per store; the difference Redis - in-process at p50/p99."""
    pooled: dict[str, dict[str, Any]] = {}
    for store in ("memory", "redis"):
        mine = [r for r in runs if r["store"] == store]
        chat = [v for r in mine for v in r["samples"]["e2e_ms"]]
        stage = [v for r in mine for v in r["samples"]["stages_ms"].get("session", [])]
        ok = sum(r["outcomes"].get("OK", 0) for r in mine)
        pooled[store] = {"chats": ok, "sent": sum(r["sent"] for r in mine),
                         "chat": common.latency_summary(chat), "session_stage": common.latency_summary(stage)}
    delta = {f"{what}_{q}_ms": round(pooled["redis"][what][f"{q}_ms"] - pooled["memory"][what][f"{q}_ms"], 3)
             for what in ("chat", "session_stage") for q in ("p50", "p99")}
    return {"pooled": pooled, "redis_minus_memory": delta}


def render(payload: dict[str, Any]) -> str:
    s, d = payload["summary"]["pooled"], payload["summary"]["redis_minus_memory"]
    rows = [(store, s[store]["chats"], s[store]["sent"], common.fmt(s[store]["chat"]["p50_ms"]),
             common.fmt(s[store]["chat"]["p99_ms"]), common.fmt(s[store]["session_stage"]["p50_ms"], 3),
             common.fmt(s[store]["session_stage"]["p99_ms"], 3)) for store in ("memory", "redis")]
    rows.append(("redis - memory", "", "", common.fmt(d["chat_p50_ms"]), common.fmt(d["chat_p99_ms"]),
                 common.fmt(d["session_stage_p50_ms"], 3), common.fmt(d["session_stage_p99_ms"], 3)))
    iso = payload.get("isolated", {})
    iso_rows = [(store, common.fmt(r["begin"]["p50_ms"], 3), common.fmt(r["begin"]["p99_ms"], 3),
                 common.fmt(r["append"]["p50_ms"], 3), common.fmt(r["append"]["p99_ms"], 3)) for store, r in iso.items()]
    return "\n".join([
        "# Session store cost per chat: in-process vs Redis", "",
        "## The store's own cost (sequential, nothing else running)", "",
        common.markdown_table(("store", "begin p50 ms", "begin p99 ms", "append p50 ms", "append p99 ms"), iso_rows),
        "", "`begin` runs before the answer, `append` after it; both are on the chat's path.", "",
        "## Under load: the service with each store", "",
        f"`{payload['command']}` on {payload['device'].get('cpu', 'this machine')}; {payload['rate']} chats/s, "
        f"{payload['duration_s']} s x {payload['rounds']} rounds per store, interleaved.", "",
        common.markdown_table(("store", "OK", "sent", "chat p50 ms", "chat p99 ms", "session stage p50 ms",
                               "session stage p99 ms"), rows), "",
        "Per-run outcomes and degraded reasons: `store_cost.json`.", "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sessions.store_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=40.0, help="chats per second (open loop)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of arrivals per run")
    parser.add_argument("--rounds", type=int, default=2, help="runs per store, interleaved")
    parser.add_argument("--build-dir", type=Path, default=common.DEFAULT_BUILD_DIR)
    parser.add_argument("--out", type=Path, default=common.DEFAULT_RESULTS_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from server.triton_runtime import TritonServer

    build, out = args.build_dir.resolve(), args.out.resolve()
    messages = common.intent_texts(build / "data", limit=1000)
    random.Random(0).shuffle(messages)
    command = "python -m benchmarks.sessions.store_cost " + shlex.join(argv if argv is not None else sys.argv[1:])
    runs: list[dict[str, Any]] = []
    with RedisProcess() as redis, TritonServer(build / "triton" / "cpu", startup_timeout_s=600) as triton:
        url = redis.url
        from server.sessions.store import MemorySessionStore, RedisSessionStore

        limits = {"rate_per_s": 100.0, "burst": 100, "customer_rate_per_s": 1000.0, "customer_burst": 1000}  # none hit
        stores = {"memory": lambda: MemorySessionStore(**limits),
                  "redis": lambda: RedisSessionStore(url, key_prefix="iso:", timeout_ms=1000, **limits)}
        isolated = {name: asyncio.run(store_calls(make())) for name, make in stores.items()}
        log.info("isolated store calls: %s", {k: (v["begin"]["p99_ms"], v["append"]["p99_ms"]) for k, v in isolated.items()})
        for round_ in range(args.rounds):
            for store, state in (("memory", {"backend": "memory"}), ("redis", {"backend": "redis", "redis_url": url})):
                stack = SessionStack(build, build / "triton" / "cpu", out / "tmp" / f"sessions-{store}",
                                     generous_budgets=False, triton=triton, state=state)
                with stack:
                    from clients.sdk import MangaAssistClient

                    with MangaAssistClient(stack.target, timeout=60.0) as client:
                        for i in range(10):  # warm-up
                            client.chat(messages[i], session_id=f"warm-{store}-{round_}-{i}")
                    result = asyncio.run(run_rate(stack.target, messages, args.rate, args.duration, timeout_s=10.0,
                                                  seed=round_, request_for=conversations(f"{store}{round_}"),
                                                  samples=True))
                log.info("%s round %d: %s, chat p99 %.1f ms, session stage p99 %.3f ms", store, round_,
                         result["outcomes"], result["e2e"]["p99_ms"], result["stages"].get("session", {}).get("p99_ms", 0))
                runs.append({"store": store, "round": round_, **result})
    payload = {"device": common.device_info(), "command": command, "rate": args.rate, "duration_s": args.duration,
               "rounds": args.rounds, "isolated": isolated, "summary": summarise(runs),
               "runs": [{k: v for k, v in r.items() if k != "samples"} for r in runs]}
    common.write_json(out / "sessions" / "store_cost.json", payload)
    (out / "sessions" / "store_cost.md").write_text(render(payload))
    print((out / "sessions" / "store_cost.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
