"""Conversation memory in a real redis-server (installed by scripts/setup.sh from Debian's package): the store's
bounds, two service instances sharing one Redis, and a Redis outage degrading -- not failing -- the chat."""

from __future__ import annotations

import asyncio
import os
import shutil
import time

import pytest

from fakes import CUSTOMER

from benchmarks.sessions.redis_process import RedisProcess, free_port
from server.errors import SessionUnavailable
from server.sessions.store import RedisSessionStore, Turn
from tests.support.requirements import require

pytestmark = pytest.mark.L0

ORDER = "MA-20481937"  # the fake catalog's order (tests/integration/fakes.py)


@pytest.fixture
def redis_server():
    require("redis-server", shutil.which("redis-server") is not None, "the session store's tests run a real Redis")
    with RedisProcess() as server:
        yield server


async def test_the_redis_store_keeps_the_last_turns_with_a_ttl(redis_server):
    store = RedisSessionStore(redis_server.url, ttl_s=120, max_turns=3, max_turn_chars=20, timeout_ms=500)
    try:
        for i in range(5):
            await store.append("s1", Turn(message=f"turn {i}", asins=("B0CHAINSW1",), answer="a" * 100))
        turns = await store.history("s1")
        assert [t.message for t in turns] == ["turn 2", "turn 3", "turn 4"]  # LTRIM: the last max_turns
        assert turns[-1].asins == ("B0CHAINSW1",) and len(turns[-1].answer) == 20
        ttl = await store._redis.ttl(store._key("s1"))  # observed in Redis itself
        assert 0 < ttl <= 120
        assert await store.history("nobody") == []
    finally:
        await store.close()


async def test_a_chat_reads_limits_block_and_turns_in_one_round_trip(redis_server):
    store = RedisSessionStore(redis_server.url, timeout_ms=500, rate_per_s=1.0, burst=2,
                              customer_rate_per_s=1.0, customer_burst=5)
    try:
        await store.append("s1", Turn(message="how much is naruto 3"))
        await store.block("s2", 60)
        sent, execute = [], store._redis.execute_command

        async def counted(*args, **kwargs):  # every request the client sends to Redis
            sent.append(args[0])
            return await execute(*args, **kwargs)

        store._redis.execute_command = counted
        view = await store.begin("s1", "C-1")
        assert sent == ["EVAL"]  # one round trip: both buckets, the block flag and the turns in one script
        assert view.limited is None and not view.blocked and [t.message for t in view.turns] == ["how much is naruto 3"]
        assert (await store.begin("s2", "C-1")).blocked
        assert (await store.begin("s1", "C-1")).limited is None  # s1's second token
        refused = await store.begin("s1", "C-1")
        assert refused.limited == "session" and refused.turns == ()  # nothing read for a refused call
    finally:
        await store.close()


async def test_an_unreachable_redis_is_session_unavailable_quickly():
    store = RedisSessionStore(f"redis://127.0.0.1:{free_port()}/0", timeout_ms=50)
    with pytest.raises(SessionUnavailable):  # a hang ends in wait_for's TimeoutError instead: fails by its type
        await asyncio.wait_for(store.history("s1"), 30)
    await store.close()


async def test_a_conversation_continues_on_another_instance_sharing_redis(make_server, redis_server):
    cluster = {"state": {"backend": "redis", "redis_url": redis_server.url}, "sessions": {"timeout_ms": 500}}
    first, second = await make_server(**cluster), await make_server(**cluster)
    async with client_of(first) as a, client_of(second) as b:
        asked = await a.chat("where is my order?", session_id="conv-1", customer_id=CUSTOMER)
        assert "order number" in asked.answer
        # the bare id goes to the other instance: only Redis can tell it what was asked
        reply = await b.chat(ORDER, session_id="conv-1", customer_id=CUSTOMER)
        assert reply.intent == "order_status" and ORDER in reply.answer and "shipped" in reply.answer, reply.answer
        assert "session_unavailable" not in reply.degraded
        # without the session the same bare id stands alone and is not looked up as an order
        alone = await b.chat(ORDER, session_id="conv-2", customer_id=CUSTOMER)
        assert "shipped" not in alone.answer


async def test_redis_killed_mid_conversation_degrades_then_recovers(make_server, redis_server):
    server = await make_server(state={"backend": "redis", "redis_url": redis_server.url}, sessions={"timeout_ms": 200})
    async with client_of(server) as c:
        await c.chat("where is my order?", session_id="conv-3", customer_id=CUSTOMER)
        redis_server.kill()
        down = await c.chat(ORDER, session_id="conv-3", customer_id=CUSTOMER)
        assert down.answer and "session_unavailable" in down.degraded  # answered, without memory
        redis_server.start()  # same port, empty (no persistence): the conversation starts again
        await asyncio.sleep(0.1)
        await c.chat("where is my order?", session_id="conv-3", customer_id=CUSTOMER)
        back = await c.chat(ORDER, session_id="conv-3", customer_id=CUSTOMER)
        assert "session_unavailable" not in back.degraded and ORDER in back.answer and "shipped" in back.answer


async def test_the_session_rate_limit_is_shared_through_redis(make_server, redis_server):
    from clients.errors import SessionRateLimited

    cluster = {"state": {"backend": "redis", "redis_url": redis_server.url},
               "sessions": {"timeout_ms": 500, "rate_per_s": 1.0, "rate_burst": 2}}
    first, second = await make_server(**cluster), await make_server(**cluster)
    async with client_of(first) as a, client_of(second) as b:
        await a.chat("hello", session_id="noisy")
        await b.chat("hello again", session_id="noisy")  # the second token, taken on the other instance
        with pytest.raises(SessionRateLimited) as refused:
            await a.chat("and again", session_id="noisy")
        assert 0 < refused.value.retry_after_s <= 1.0
        assert (await b.chat("hello", session_id="calm")).answer  # other sessions are not affected


async def test_the_customer_rate_limit_spans_sessions_and_instances(make_server, redis_server):
    from clients.errors import CustomerRateLimited

    cluster = {"state": {"backend": "redis", "redis_url": redis_server.url},
               "sessions": {"timeout_ms": 500, "customer_rate_per_s": 0.5, "customer_rate_burst": 3}}
    first, second = await make_server(**cluster), await make_server(**cluster)
    async with client_of(first) as a, client_of(second) as b:
        for i, client in enumerate((a, b, a)):  # three sessions on two instances: the customer's 3 tokens
            await client.chat("hello", session_id=f"tab-{i}", customer_id=CUSTOMER)
        with pytest.raises(CustomerRateLimited) as refused:
            await b.chat("hello", session_id="tab-9", customer_id=CUSTOMER)
        assert refused.value.reason == "customer_rate_limited" and 0 < refused.value.retry_after_s <= 2.0
        assert (await b.chat("hello", session_id="tab-9", customer_id="C-2")).answer  # another customer is not


async def test_a_block_set_through_one_instance_holds_on_the_other(make_server, redis_server):
    from test_service_hallucination import FABRICATED, QUESTION, GatedScorer, _wait_for
    from test_service_tiers_guardrails import ScriptedTier

    cluster = {"state": {"backend": "redis", "redis_url": redis_server.url}, "sessions": {"timeout_ms": 500}}
    first = await make_server(**cluster, hallucination_score_fn=GatedScorer(), guardrail_settings={"hallucination_block": 0.7},
                              tiers={"small": ScriptedTier("small", FABRICATED, ["B0CHAINSW1"])})
    second = await make_server(**cluster, hallucination_score_fn=GatedScorer())
    async with client_of(first) as a, client_of(second) as b:
        assert not (await a.chat(QUESTION, session_id="conv-b")).blocked  # scored after the response
        await _wait_for(lambda: second.pipeline.sessions.is_blocked("conv-b"))  # seen through Redis
        assert not second.scoring.is_session_blocked("conv-b")  # not in the other pod's own memory
        again = await b.chat("what about volume 3?", session_id="conv-b")
        assert again.blocked and [(g.guardrail, g.action) for g in again.guardrail_actions] == [("hallucination", "blocked")]
        assert not (await b.chat("hello", session_id="conv-c")).blocked


def test_the_redis_review_queue_orders_worst_first_and_marks_once(redis_server):
    from server.hallucination.review import RedisReviewQueue

    a, b = RedisReviewQueue(redis_server.url), RedisReviewQueue(redis_server.url)  # two pods
    low = a.add("s1", "r1", "answer one", "claim", 0.55, ["src"])
    high = b.add("s2", "r2", "answer two", "claim two", 0.9, ["src a", "src b"])
    tie = a.add("s3", "r3", "answer three", "claim", 0.55, [])
    assert [i.id for i in b.pending()] == [high, low, tie] and a.count_pending() == 3
    assert a.get(high).sources == ("src a", "src b") and a.get(high).reviewed_at is None
    assert b.mark_reviewed(high, "fabricated") and not a.mark_reviewed(high)  # once, whichever pod
    assert a.get(high).verdict == "fabricated" and [i.id for i in a.pending()] == [low, tie]
    assert a.get(999) is None and not a.mark_reviewed(999)
    a.close(), b.close()


async def test_an_alert_on_one_instance_reaches_the_review_queue_every_instance_reads(make_server, redis_server):
    from test_service_hallucination import FABRICATED, QUESTION, GatedScorer, _wait_for
    from test_service_tiers_guardrails import ScriptedTier

    cluster = {"state": {"backend": "redis", "redis_url": redis_server.url}, "sessions": {"timeout_ms": 500}}
    first = await make_server(**cluster, hallucination_score_fn=GatedScorer(),
                              tiers={"small": ScriptedTier("small", FABRICATED, ["B0CHAINSW1"])})
    second = await make_server(**cluster, hallucination_score_fn=GatedScorer())
    async with client_of(first) as a:
        reply = await a.chat(QUESTION, session_id="conv-r")
    await _wait_for(lambda: second.scoring.review_store.count_pending() == 1)
    (item,) = second.scoring.review_store.pending()
    assert item.request_id == reply.request_id and item.session_id == "conv-r" and item.score >= 0.7


def test_two_service_processes_continue_one_conversation_through_redis(redis_server, tmp_path):
    """Two real ``python -m server`` processes (fake backend) sharing one redis-server: the order number asked
    for on one is answered, as that order, by the other."""
    import subprocess
    import sys
    from pathlib import Path

    from clients.sdk import MangaAssistClient

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root / 'proto'}{os.pathsep}{root}", "MANGAASSIST_BUILD_DIR": str(tmp_path),
           "MANGAASSIST_RETRIEVAL_CATALOG_DB": str(tmp_path / "none.sqlite"),
           "MANGAASSIST_RETRIEVAL_INDEX_DIR": str(tmp_path / "none"), "MANGAASSIST_SERVER_HOST": "127.0.0.1",
           "MANGAASSIST_STATE_BACKEND": "redis", "MANGAASSIST_STATE_REDIS_URL": redis_server.url,
           "MANGAASSIST_SESSIONS_TIMEOUT_MS": "500", "MANGAASSIST_TRAFFIC_ENABLED": "false"}
    ports = [free_port(), free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "server", "--fake-backend", "--port", str(p), "--metrics-port", "-1"],
                              cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in ports]
    try:
        clients = [MangaAssistClient(f"127.0.0.1:{p}", timeout=5) for p in ports]
        for client, proc in zip(clients, procs):
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.health("") == "SERVING":
                        break
                except Exception:  # noqa: BLE001 -- still starting
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "a service process did not start"
                time.sleep(0.2)
        a, b = clients
        asked = a.chat("where is my order?", session_id="p-1", customer_id=CUSTOMER)
        assert "order number" in asked.answer, asked.answer
        reply = b.chat("MA-12345678", session_id="p-1", customer_id=CUSTOMER)  # the other process
        assert reply.intent == "order_status" and "MA-12345678" in reply.answer and "on your account" in reply.answer
        alone = b.chat("MA-12345678", session_id="p-2", customer_id=CUSTOMER)
        assert "on your account" not in alone.answer, alone.answer
        for client in clients:
            client.close()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)


def client_of(server):
    from clients.sdk import AsyncMangaAssistClient

    return AsyncMangaAssistClient(server.target, timeout=5.0)
