"""The reversal triggers inside the real gRPC service (fake backend): chats answered by an LLM tier are scored by the
async hallucination scorer, the score lands on the turn's traffic-log row, and the service's trigger job turns the
log into ``mangaassist_reversal_trigger_crossed{trigger="hallucination_rate"}`` on its own /metrics registry:
fabricated answers fire it, grounded answers keep it quiet."""

from __future__ import annotations

import asyncio

import pytest
from fakes import FakeCatalog, FakeIndex, rule_matcher
from test_service_tiers_guardrails import ScriptedTier

from clients.sdk import AsyncMangaAssistClient
from server.app import Components, start_server
from server.backends.fake import FakeBackend
from server.guardrails.base import PassThroughGuardrails
from server.hallucination import lexical_score_fn
from server.traffic.store import SQLiteTrafficStore
from tests.integration.conftest import test_settings
from tests.support.servers import drained_after

pytestmark = pytest.mark.L0

GROUNDED = "Chainsaw Man, Vol. 1 (B0CHAINSW1) is $9.99 and written by Tatsuki Fujimoto."
FABRICATED = "Chainsaw Man, Vol. 1 (B0CHAINSW1) is $24.99 and written by Eiichiro Oda."
QUESTION = "Is Chainsaw Man vol 1 in stock?"
CHATS = 4


async def crossed_after_chats(answer: str) -> tuple[float, list]:
    store = SQLiteTrafficStore()

    async def start():
        backend = FakeBackend()
        components = Components(backend=backend, catalog=FakeCatalog(), index=FakeIndex(backend=backend),
                                guardrails=PassThroughGuardrails(), tiers={"small": ScriptedTier("small", answer, ["B0CHAINSW1"])},
                                rules=rule_matcher(), traffic_store=store, hallucination_score_fn=lexical_score_fn())
        settings = test_settings(drift={"enabled": False},
                                 triggers={"interval_s": 0.1, "min_samples": 1, "hallucination_min_scored": CHATS})
        return await start_server(settings, components, serve_metrics=False)

    async with drained_after(start) as factory:
        server = await factory()
        async with AsyncMangaAssistClient(server.target, timeout=5.0) as client:
            for i in range(CHATS):  # one session each: a fabricated answer blocks its session
                await client.chat(QUESTION, session_id=f"s{i}", request_id=f"req-{i}")
        reg = server.metrics.registry
        for _ in range(200):
            rows = store.records()
            if len(rows) == CHATS and all(r.hallucination is not None for r in rows) and \
                    reg.get_sample_value("mangaassist_reversal_trigger_samples", {"trigger": "hallucination_rate"}) == CHATS:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"rows {[(r.request_id, r.hallucination) for r in store.records()]}")
        await asyncio.sleep(0.25)  # one more run of the job over the complete rows
        return reg.get_sample_value("mangaassist_reversal_trigger_crossed", {"trigger": "hallucination_rate"}), rows


async def test_fabricated_answers_cross_the_hallucination_trigger_through_the_service():
    crossed, rows = await crossed_after_chats(FABRICATED)
    assert crossed == 1.0
    assert {r.intent for r in rows} == {"product_question"} and min(r.hallucination for r in rows) >= 0.5


async def test_grounded_answers_keep_it_quiet():
    crossed, rows = await crossed_after_chats(GROUNDED)
    assert crossed == 0.0 and max(r.hallucination for r in rows) < 0.5
