"""The traffic log through the real gRPC service (fake backend): every answered Chat and ChatStream is logged
after the response, redacted; ChatStream carries its tier's token usage (it was always zero) into the response,
the log and the per-tier cost counters."""

from __future__ import annotations

import asyncio
import json

import pytest
from fakes import FakeCatalog, FakeIndex, rule_matcher

from clients.sdk import AsyncMangaAssistClient
from tests.integration.conftest import test_settings
from server.app import Components, start_server
from server.backends.fake import FakeBackend
from server.guardrails.suite import GuardrailSuite
from server.traffic.store import SQLiteTrafficStore
from tests.support.servers import drained_after

pytestmark = pytest.mark.L0


class UsageTier:
    """A small tier that streams NDJSON and reports its usage the way Bedrock/local tiers do."""

    name, model = "small", "usage-small"

    async def generate(self, request):
        from server.llm.base import LLMAnswer

        return LLMAnswer(text="Returns are accepted within 30 days.", tier="small", model=self.model,
                         input_tokens=50, output_tokens=9, cost_usd=0.0003)

    async def stream(self, request, usage=None):
        yield json.dumps({"type": "text", "text": "Returns are accepted within 30 days."}) + "\n"
        yield '{"type": "end"}\n'
        if usage is not None:
            usage.input_tokens, usage.output_tokens, usage.cost_usd = 77, 11, 0.0009


@pytest.fixture
async def logged_server():
    store = SQLiteTrafficStore()

    async def start():
        backend = FakeBackend()
        components = Components(backend=backend, catalog=FakeCatalog(), index=FakeIndex(backend=backend),
                                guardrails=GuardrailSuite(FakeCatalog()), tiers={"small": UsageTier()},
                                rules=rule_matcher(), traffic_store=store)
        return await start_server(test_settings(drift={"enabled": False}), components, serve_metrics=False)

    async with drained_after(start) as factory:
        yield await factory(), store


async def wait_for_rows(store, n: int, timeout: float = 5.0):
    for _ in range(int(timeout / 0.02)):
        if store.count() >= n:
            return store.records()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{store.count()} rows logged, expected {n}")


async def test_chat_and_chat_stream_are_logged_redacted_with_stream_usage(logged_server):
    server, store = logged_server
    message = "I want to return my order, email me at jane.doe@example.com"
    async with AsyncMangaAssistClient(server.target, timeout=5.0) as client:
        whole = await client.chat(message, session_id="sess-a", request_id="req-chat")
        finals = [item.final async for item in client.chat_stream(message, session_id="sess-b", request_id="req-stream")
                  if item.HasField("final")]
    (final,) = finals
    assert final.tier == "small" and (final.usage.input_tokens, final.usage.output_tokens) == (77, 11)  # was (0, 0)
    rows = {r.request_id: r for r in await wait_for_rows(store, 2)}
    assert set(rows) == {"req-chat", "req-stream"}
    for r in rows.values():
        assert "jane.doe@example.com" not in r.message and "return my order" in r.message
        assert r.session_hash and "sess" not in r.session_hash
        assert r.intent == whole.intent and r.tier == "small" and "pii:redacted" in r.guardrails
        assert "classify" in r.timings_ms and len(r.sketch) == 16
    assert not rows["req-chat"].stream and rows["req-stream"].stream
    assert (rows["req-stream"].input_tokens, rows["req-stream"].cost_usd) == (77, 0.0009)
    reg = server.metrics.registry
    assert reg.get_sample_value("mangaassist_llm_tokens_total", {"tier": "small", "direction": "input"}) == 50 + 77
    assert reg.get_sample_value("mangaassist_llm_cost_usd_total", {"tier": "small"}) == pytest.approx(0.0012)


async def test_feedback_rpc_lands_on_the_logged_turn(logged_server):
    import grpc
    from mangaassist.v1 import mangaassist_pb2 as pb
    from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

    server, store = logged_server
    async with AsyncMangaAssistClient(server.target, timeout=5.0) as client:
        reply = await client.chat("where is my order?", session_id="sess-f", request_id="req-feedback")
    async with grpc.aio.insecure_channel(server.target) as channel:
        done = await pb_grpc.MangaAssistStub(channel).Feedback(
            pb.FeedbackRequest(request_id=reply.request_id, session_id="sess-f", kind=pb.FeedbackRequest.THUMBS_DOWN),
            timeout=5.0)
    assert done.recorded
    for _ in range(100):
        rows = store.records()
        if rows and rows[-1].feedback:
            break
        await asyncio.sleep(0.05)
    assert [(r.request_id, r.feedback) for r in store.records()] == [("req-feedback", "thumbs_down")]
