"""Async hallucination scoring wired into the service: a Chat answer is queued for scoring once the
response is out, a full queue drops (counted) without touching the request, a fabricated answer blocks its
session, and drain stops the workers."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import threading

import pytest
from test_service_tiers_guardrails import ScriptedTier

from clients.sdk import AsyncMangaAssistClient
from server.hallucination import lexical_score_fn

pytestmark = pytest.mark.L0

GROUNDED = "Chainsaw Man, Vol. 1 (B0CHAINSW1) is $9.99 and written by Tatsuki Fujimoto."
FABRICATED = "Chainsaw Man, Vol. 1 (B0CHAINSW1) is $24.99 and written by Eiichiro Oda."
QUESTION = "Is Chainsaw Man vol 1 in stock?"


class GatedScorer:
    """The lexical scorer behind a gate: records every call and waits for ``release`` before scoring."""

    def __init__(self, open_gate: bool = True) -> None:
        self.calls: list[tuple[list[str], list[str]]] = []
        self.called = asyncio.Event()
        self.gate = asyncio.Event()
        self.loop_threads: set[int] = set()
        if open_gate:
            self.gate.set()
        self._lexical = lexical_score_fn()

    async def __call__(self, sources, claims):
        self.calls.append((list(sources), list(claims)))
        self.loop_threads.add(threading.get_ident())
        self.called.set()
        await self.gate.wait()
        return await self._lexical(sources, claims)


def sample(server, name: str, labels: dict | None = None) -> float:
    return server.metrics.registry.get_sample_value(name, labels or {}) or 0.0


async def _wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not ((await result) if inspect.isawaitable(result := predicate()) else result):
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


async def test_chat_is_scored_after_the_response_and_never_waits_for_it(make_server):
    scorer = GatedScorer(open_gate=False)  # scoring cannot finish until the test says so
    server = await make_server(tiers={"small": ScriptedTier("small", GROUNDED, ["B0CHAINSW1"])}, hallucination_score_fn=scorer)
    async with AsyncMangaAssistClient(server.target) as client:
        reply = await asyncio.wait_for(client.chat(QUESTION, session_id="s-ok"), 5.0)
    assert reply.tier == "small" and reply.answer == GROUNDED and not reply.blocked
    await asyncio.wait_for(scorer.called.wait(), 5.0)  # submitted after the response, scored in the background
    sources, claims = scorer.calls[0]
    assert any("Tatsuki Fujimoto" in s for s in sources)  # the catalog fact sheet of the card's product
    assert any("9.99" in c for c in claims)
    assert sample(server, "mangaassist_hallucination_jobs_total", {"outcome": "scored"}) == 0
    scorer.gate.set()
    await _wait_for(lambda: sample(server, "mangaassist_hallucination_jobs_total", {"outcome": "scored"}) == 1)
    assert sample(server, "mangaassist_hallucination_alerts_total") == 0
    assert not await server.pipeline.sessions.is_blocked("s-ok")


async def test_template_answers_are_not_scored(make_server):
    scorer = GatedScorer()
    server = await make_server(hallucination_score_fn=scorer)  # no LLM tier: every answer is a template
    async with AsyncMangaAssistClient(server.target) as client:
        reply = await client.chat(QUESTION, session_id="s-t")
    assert reply.tier == "template"
    await asyncio.sleep(0.1)
    assert scorer.calls == [] and server.scoring.depth == 0


async def test_full_queue_drops_with_a_metric_and_the_request_still_succeeds(make_server):
    scorer = GatedScorer(open_gate=False)  # the one worker holds the first job
    server = await make_server(
        tiers={"small": ScriptedTier("small", GROUNDED, ["B0CHAINSW1"])},
        hallucination_score_fn=scorer,
        guardrail_settings={"hallucination_queue_size": 1},
    )
    async with AsyncMangaAssistClient(server.target) as client:
        first = await client.chat(QUESTION, session_id="s1")
        await asyncio.wait_for(scorer.called.wait(), 5.0)  # job 1 is with the worker
        replies = [await client.chat(QUESTION, session_id=f"s{i}") for i in (2, 3, 4)]  # 2 queues, 3 and 4 drop
    assert all(r.answer == GROUNDED and not r.blocked for r in (first, *replies))
    await _wait_for(lambda: sample(server, "mangaassist_hallucination_dropped_total", {"reason": "queue_full"}) == 2)
    assert server.scoring.depth == 1
    scorer.gate.set()
    await _wait_for(lambda: sample(server, "mangaassist_hallucination_jobs_total", {"outcome": "scored"}) == 2)


async def test_fabricated_answer_alerts_reviews_and_blocks_the_session(make_server):
    scorer = GatedScorer()
    # blocking is opt-in (the default is alert-only: issue 22.6, benchmarks/results/hallucination_alerting)
    server = await make_server(tiers={"small": ScriptedTier("small", FABRICATED, ["B0CHAINSW1"])}, hallucination_score_fn=scorer,
                               guardrail_settings={"hallucination_block": 0.7})
    async with AsyncMangaAssistClient(server.target) as client:
        reply = await client.chat(QUESTION, session_id="s-bad")
        assert reply.tier == "small" and not reply.blocked  # the answer itself went out: scoring is async
        await _wait_for(lambda: server.pipeline.sessions.is_blocked("s-bad"))
        assert sample(server, "mangaassist_hallucination_alerts_total") == 1
        assert sample(server, "mangaassist_hallucination_blocks_total") == 1
        (item,) = server.scoring.review_store.pending()
        assert item.session_id == "s-bad" and item.request_id == reply.request_id and item.score >= 0.7

        again = await client.chat("what about volume 3?", session_id="s-bad")
        assert again.blocked and again.tier == "template"
        assert [(a.guardrail, a.action) for a in again.guardrail_actions] == [("hallucination", "blocked")]
        finals = [m.final async for m in client.chat_stream(QUESTION, session_id="s-bad") if m.HasField("final")]
        assert finals[0].blocked and finals[0].guardrail_actions[0].guardrail == "hallucination"

        other = await client.chat(QUESTION, session_id="s-other")  # other sessions are unaffected
        assert not other.blocked and other.tier == "small"
    await _wait_for(lambda: len(scorer.calls) == 2)  # s-bad's first answer and s-other's
    await asyncio.sleep(0.05)
    assert len(scorer.calls) == 2  # blocked answers are not scored
    assert scorer.loop_threads == {threading.get_ident()}  # submitted on the event loop's thread


async def test_chat_stream_answers_are_scored(make_server):
    scorer = GatedScorer()
    server = await make_server(tiers={"small": ScriptedTier("small", FABRICATED, ["B0CHAINSW1"])}, hallucination_score_fn=scorer)
    async with AsyncMangaAssistClient(server.target) as client:
        messages = [m async for m in client.chat_stream(QUESTION, session_id="s-stream")]
    assert messages[-1].final.tier == "small" and not messages[-1].final.blocked
    await _wait_for(lambda: sample(server, "mangaassist_hallucination_alerts_total") == 1)  # scored: it alerts
    assert not await server.pipeline.sessions.is_blocked("s-stream")  # alert-only by default (issue 22.6)


async def test_scoring_off_and_drain_stops_the_workers(make_server):
    off = await make_server(hallucination_score_fn=GatedScorer(), guardrail_settings={"hallucination_scoring": "off"})
    assert off.scoring is None and off.pipeline.scoring is None

    scorer = GatedScorer(open_gate=False)
    server = await make_server(tiers={"small": ScriptedTier("small", GROUNDED, ["B0CHAINSW1"])}, hallucination_score_fn=scorer)
    server.scoring.config = type(server.scoring.config)(
        dataclasses.replace(server.scoring.config.guardrails, hallucination_drain_timeout_s=0.2))
    async with AsyncMangaAssistClient(server.target) as client:
        await client.chat(QUESTION, session_id="s-drain")
        await client.chat(QUESTION, session_id="s-drain2")
    await asyncio.wait_for(scorer.called.wait(), 5.0)
    # the gate never opens: drain gives up after drain_timeout_s (a drain that waited on the worker would hang,
    # and wait_for's TimeoutError fails the test); the state below shows it gave up
    await asyncio.wait_for(server.drain(grace_s=0), 30)
    assert server.scoring._tasks == []
    assert sample(server, "mangaassist_hallucination_dropped_total", {"reason": "shutdown"}) == 1
