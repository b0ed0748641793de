"""Chat / ChatStream / Classify / Retrieve / Describe through a real grpc.aio server (fake models)."""

from __future__ import annotations

import json

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mangaassist.v1 import mangaassist_pb2 as pb
from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

from clients import errors as client_errors
from server.intents import INTENT_LABELS
from fakes import CUSTOMER

pytestmark = pytest.mark.L0


async def test_chat_product_question_returns_catalog_card(aclient):
    reply = await aclient.chat("Is Chainsaw Man vol 1 in stock?", session_id="s1")
    assert reply.request_id
    assert reply.intent in INTENT_LABELS
    assert reply.tier == "template"  # no LLM tiers configured
    cards = {c.asin: c for c in reply.cards}
    assert "B0CHAINSW1" in cards
    assert cards["B0CHAINSW1"].price == pytest.approx(9.99)  # the catalog's price
    assert cards["B0CHAINSW1"].currency == "USD" and cards["B0CHAINSW1"].in_stock
    assert "$9.99" in reply.answer
    stages = [t.stage for t in reply.timings]
    assert stages[:4] == ["validation", "session", "input_guard", "rules"]  # session: limits, block, memory (s1)
    assert {"classify", "embed", "answer", "output_guard"} <= set(stages)
    assert all(t.ms >= 0 for t in reply.timings)


async def test_chat_product_question_routed_to_absent_small_tier_says_so(aclient):
    reply = await aclient.chat("Is Chainsaw Man vol 1 in stock?")
    # product_question routes to "small"; no small/large tier is configured in tests
    assert "tier_fallback:small->template" in reply.degraded


async def test_chat_rule_path_order_status(aclient, backend):
    reply = await aclient.chat("Where is my order MA-20481937? tracking please", customer_id=CUSTOMER)
    assert reply.rule_decided
    assert reply.intent == "order_status" and reply.intent_confidence == 1.0
    assert "UPS" in reply.answer and "1Z999AA10123456784" in reply.answer
    assert "classify" not in backend.calls  # the rule decided: no classifier call
    assert not reply.cards


async def test_chat_policy_answer_grounded_in_retrieved_chunk(aclient, backend):
    reply = await aclient.chat("what is your refund policy for damaged manga returns")
    assert reply.intent == "return_refund"
    assert "30 days" in reply.answer
    assert {"embed", "adapt", "rerank"} <= set(backend.calls)


async def test_chat_request_id_echoed(server):
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = pb_grpc.MangaAssistStub(channel)
        reply = await stub.Chat(pb.ChatRequest(message="hello"), metadata=(("x-request-id", "req-42"),))
    assert reply.request_id == "req-42"


async def test_chat_stream_deltas_then_final(aclient):
    items = [item async for item in aclient.chat_stream("Is Chainsaw Man vol 1 in stock?")]
    deltas = [i.delta for i in items if i.WhichOneof("event") == "delta"]
    finals = [i.final for i in items if i.WhichOneof("event") == "final"]
    assert deltas and len(finals) == 1 and items[-1].WhichOneof("event") == "final"
    assert "".join(deltas).strip() == finals[0].answer.strip()
    assert finals[0].cards[0].price == pytest.approx(9.99)


async def test_classify_batch(aclient, backend):
    texts = ["hello", "I want a refund for a damaged book", "any discount on Frieren?", "talk to a human please"]
    reply = await aclient.classify(texts)
    assert len(reply.results) == len(texts)
    by_text = dict(zip(texts, reply.results))
    assert by_text["hello"].rule_decided and by_text["hello"].intent == "chitchat"
    assert by_text["talk to a human please"].intent == "escalation"
    assert by_text["I want a refund for a damaged book"].intent == "return_refund"
    assert not by_text["I want a refund for a damaged book"].rule_decided
    assert by_text["any discount on Frieren?"].intent == "price_deal"
    for r in reply.results:
        assert set(r.scores) == set(INTENT_LABELS)
        assert sum(r.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert r.confidence == pytest.approx(max(r.scores.values()))
    assert backend.calls.count("classify") == 1  # one batched call for the texts the rules missed


async def test_retrieve_reranked_and_not(aclient):
    reply = await aclient.retrieve("return refund damaged", top_k=2)
    assert reply.reranked and len(reply.chunks) == 2
    assert reply.chunks[0].doc_id == "policy-returns"
    assert all(c.reranked for c in reply.chunks)
    assert reply.chunks[0].score >= reply.chunks[1].score
    plain = await aclient.retrieve("Frieren fantasy elf mage", top_k=1, rerank=False)
    assert not plain.reranked and plain.chunks[0].asin == "B0FRIEREN1"
    default = await aclient.retrieve("shipping")
    assert len(default.chunks) == 5  # server.default_top_k (all five fake chunks)


async def test_describe(aclient):
    d = await aclient.describe()
    assert list(d.intents) == list(INTENT_LABELS)
    assert d.model_versions["intent_classifier"] == "1"
    assert d.limits.max_concurrency == 64 and d.limits.max_text_chars == 2000
    assert d.budgets.total_ms == 300 and d.budgets.rerank_ms > 0
    routes = {t.intent: t for t in d.tiers}
    assert routes["chitchat"].tier == "template" and routes["chitchat"].available
    assert routes["recommendation"].tier == "large" and not routes["recommendation"].available
    assert routes["product_question"].temperature == pytest.approx(0.1)
    assert d.backend_ready and list(d.llm_tiers) == ["template"]
    assert d.retrieval_backend == "faiss"


async def test_health(server, backend):
    async with grpc.aio.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "mangaassist.v1.MangaAssist", "liveness", "readiness"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

        backend.ready = False  # Triton died
        await server.refresh_health()  # (the watcher would get there within health_poll_s)
        ready = await health.Check(health_pb2.HealthCheckRequest(service="readiness"))
        live = await health.Check(health_pb2.HealthCheckRequest(service="liveness"))
        overall = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert ready.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert overall.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert live.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_watcher_follows_backend(server, backend, aclient):
    import asyncio

    backend.ready = False
    for _ in range(100):
        if await aclient.health("readiness") == "NOT_SERVING":
            break
        await asyncio.sleep(0.02)
    assert await aclient.health("readiness") == "NOT_SERVING"
    backend.ready = True
    for _ in range(100):
        if await aclient.health("readiness") == "SERVING":
            break
        await asyncio.sleep(0.02)
    assert await aclient.health("readiness") == "SERVING"


async def test_reflection_lists_services(server):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def requests():
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        async for reply in stub.ServerReflectionInfo(requests()):
            names = {s.name for s in reply.list_services_response.service}
            break
    assert {"mangaassist.v1.MangaAssist", "grpc.health.v1.Health"} <= names


async def test_sync_client_in_thread(server):
    """The sync SDK, from a worker thread (the server runs on the test's event loop)."""
    import asyncio

    from clients.sdk import MangaAssistClient

    def call():
        with MangaAssistClient(server.target, timeout=5) as client:
            reply = client.chat("hello")
            try:
                client.chat("   ")
            except client_errors.InvalidRequest as err:
                return reply, err
        raise AssertionError("no error raised")

    reply, err = await asyncio.to_thread(call)
    assert reply.intent == "chitchat" and reply.rule_decided
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and err.reason == "invalid_argument"


async def test_cli_classify_json_lines(server, capsys):
    import asyncio
    import io

    from clients import cli

    stdin = io.StringIO("hello\n\nI want a refund\nrecommend something like Frieren\n")
    out = io.StringIO()
    rc = await asyncio.to_thread(cli.main, ["--target", server.target, "classify"], stdin=stdin, stdout=out)
    assert rc == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["text"] for r in rows] == ["hello", "I want a refund", "recommend something like Frieren"]
    assert rows[0] == {"text": "hello", "intent": "chitchat", "confidence": 1.0, "rule": rows[0]["rule"]}
    assert rows[0]["rule"]  # decided by a rule: its name
    assert rows[1]["intent"] == "return_refund" and rows[1]["rule"] is None
    assert rows[2]["intent"] == "recommendation"


async def test_cli_chat_and_describe(server):
    import asyncio
    import io

    from clients import cli

    out = io.StringIO()
    rc = await asyncio.to_thread(cli.main, ["--target", server.target, "chat", "Is Chainsaw Man vol 1 in stock?"], stdout=out)
    assert rc == 0
    assert "Chainsaw Man, Vol. 1 [B0CHAINSW1] 9.99 USD, in stock" in out.getvalue()
    out = io.StringIO()
    rc = await asyncio.to_thread(cli.main, ["--target", server.target, "chat", "--json", "hello"], stdout=out)
    assert rc == 0 and json.loads(out.getvalue())["intent"] == "chitchat"
    out = io.StringIO()
    rc = await asyncio.to_thread(cli.main, ["--target", server.target, "describe"], stdout=out)
    assert rc == 0 and json.loads(out.getvalue())["limits"]["max_classify_texts"] == 64
    out = io.StringIO()
    rc = await asyncio.to_thread(cli.main, ["--target", server.target, "health", "--service", "readiness"], stdout=out)
    assert rc == 0 and out.getvalue().strip() == "SERVING"
    out = io.StringIO()
    rc = await asyncio.to_thread(cli.main, ["--target", server.target, "retrieve", "refund", "--k", "2"], stdout=out)
    assert rc == 0 and out.getvalue().startswith("1. [")
