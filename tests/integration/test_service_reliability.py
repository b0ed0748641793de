"""Reliability behaviours (docs/reliability.md): deadlines, degradation, admission, bad input, errors, drain, auth."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from mangaassist.v1 import mangaassist_pb2 as pb
from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

from clients import errors as client_errors
from clients.sdk import AsyncMangaAssistClient
from server.errors import BackendError, BackendOverloaded
from fakes import CUSTOMER

pytestmark = pytest.mark.L0

REASON = "mangaassist-reason"


def _reason(err: grpc.aio.AioRpcError) -> str | None:
    return next((v for k, v in (err.trailing_metadata() or ()) if k == REASON), None)


async def _chat_error(target: str, message: str, **kw) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.MangaAssistStub(channel).Chat(pb.ChatRequest(message=message), **kw)
    return err.value


# ------------------------------------------------------------------------------------------ deadlines
def _record_timeouts(backend) -> list[tuple[str, float]]:
    """Every backend call's ``(method, timeout_s)``: the deadline the service handed its model call."""
    seen: list[tuple[str, float]] = []
    enter = backend._enter

    async def recording(method: str, timeout_s: float) -> None:
        seen.append((method, timeout_s))
        await enter(method, timeout_s)

    backend._enter = recording
    return seen


async def test_deadline_with_slow_backend_is_deadline_exceeded_and_cancels_calls(make_server, backend):
    # generous stage budgets: the caller's 300 ms deadline is what binds
    server = await make_server(budgets={"total_ms": 5000, "classify_ms": 5000, "embed_ms": 5000})
    backend.latency_s = {"classify": 5.0, "embed": 5.0}
    timeouts = _record_timeouts(backend)
    start = asyncio.get_running_loop().time()
    err = await _chat_error(server.target, "recommend a dark fantasy series", timeout=0.3)
    elapsed = asyncio.get_running_loop().time() - start
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 1.5  # not the backend's 5 s
    # observed where the calls were made: each got the caller's remaining time (context.time_remaining()
    # minus the margin), not its 5 s stage budget -- the client's own DEADLINE_EXCEEDED would not show that
    assert {m for m, _ in timeouts} == {"classify", "embed"}, timeouts
    assert all(0 < t <= 0.3 for _, t in timeouts), timeouts
    for _ in range(50):  # the server side unwinds right after the client gives up
        if backend.in_flight == 0:
            break
        await asyncio.sleep(0.02)
    assert backend.in_flight == 0
    assert {"classify", "embed"} <= set(backend.cancelled)
    assert server.pipeline.admission.in_flight == 0
    # and the server still serves
    backend.latency_s = {}
    async with AsyncMangaAssistClient(server.target) as client:
        assert (await client.chat("hello")).intent == "chitchat"


async def test_budget_spent_inside_server_is_deadline_exceeded(make_server, backend):
    """The server's own total budget (not the caller's) runs out: DEADLINE_EXCEEDED with our reason."""
    server = await make_server(budgets={"total_ms": 200, "classify_ms": 1000, "embed_ms": 1000})
    backend.latency_s = {"classify": 2.0}
    timeouts = _record_timeouts(backend)
    err = await _chat_error(server.target, "recommend a dark fantasy series", timeout=5)
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert _reason(err) == "deadline_exceeded"  # sent by the server, long before the caller's 5 s
    assert timeouts and all(0 < t <= 0.2 for _, t in timeouts), timeouts  # total_ms bounds every call


async def test_client_cancel_cancels_backend_calls(make_server, backend):
    # budgets far above the test's length: only the caller's cancel can end the held classify call (with the
    # default 50 ms classify budget the call would time out by itself, cancel or not)
    server = await make_server(budgets={"total_ms": 60_000, "classify_ms": 60_000, "embed_ms": 60_000})
    backend.gates["classify"] = asyncio.Event()  # never set: classify hangs until cancelled
    backend.latency_s = {}
    loop = asyncio.get_running_loop()
    async with grpc.aio.insecure_channel(server.target) as channel:
        call = pb_grpc.MangaAssistStub(channel).Chat(pb.ChatRequest(message="recommend something"), timeout=60)
        for _ in range(200):
            if backend.in_flight:
                break
            await asyncio.sleep(0.01)
        assert backend.in_flight == 1 and not backend.cancelled
        await asyncio.sleep(0.2)
        assert backend.in_flight == 1  # still held: nothing but the cancel will end it
        call.cancel()
        cancelled_at = loop.time()
        for _ in range(200):
            if backend.in_flight == 0:
                break
            await asyncio.sleep(0.01)
        seen_after = loop.time() - cancelled_at
    assert backend.in_flight == 0 and backend.cancelled == ["classify"]
    assert seen_after < 1.0, seen_after
    assert server.pipeline.admission.in_flight == 0


async def test_slow_reranker_is_skipped_not_failed(make_server, backend):
    server = await make_server(budgets={"rerank_ms": 50})
    backend.latency_s = {"rerank": 2.0}
    async with AsyncMangaAssistClient(server.target) as client:
        first = await client.chat("what is your refund policy for damaged manga returns", timeout=5)
        assert "rerank_skipped" in first.degraded and "30 days" in first.answer
        assert "rerank" in backend.cancelled  # the call was abandoned at its stage budget, not awaited
        rerank_ms = [t.ms for t in first.timings if t.stage == "rerank"]
        assert rerank_ms and rerank_ms[0] < 1000  # bounded by rerank_ms=50 (not the reranker's 2 s)
        # the next chat's 50 ms cannot fit the call measured at 50+ ms: skipped up front, no second call
        second = await client.chat("what is your refund policy for damaged manga returns", timeout=5)
        assert "rerank_skipped" in second.degraded and backend.calls.count("rerank") == 1
        # a Retrieve whose caller gives it seconds has the time for the 2 s reranker: it waits for it
        retrieved = await client.retrieve("refund damaged", top_k=2, timeout=10)
        assert retrieved.reranked and "rerank_skipped" not in retrieved.degraded and len(retrieved.chunks) == 2


async def test_rerank_skipped_when_remaining_budget_is_short(make_server, backend):
    server = await make_server(budgets={"total_ms": 300, "rerank_min_remaining_ms": 300})
    async with AsyncMangaAssistClient(server.target) as client:
        reply = await client.chat("what is your refund policy for damaged manga returns")
    assert "rerank_skipped" in reply.degraded
    assert "rerank" not in backend.calls


# ------------------------------------------------------------------------------------------ degradation
async def test_backend_down_degrades_to_template_answers(make_server, backend):
    server = await make_server()
    down = BackendError("triton: failed to connect", model="triton", reason="backend_unreachable")
    backend.failures = {m: down for m in ("classify", "embed", "adapt", "rerank")}
    async with AsyncMangaAssistClient(server.target) as client:
        reply = await client.chat("Is Chainsaw Man vol 1 in stock?")
        assert reply.intent == "" and reply.tier == "template"
        assert {"classifier_unavailable", "retrieval_unavailable"} <= set(reply.degraded)
        assert [c.asin for c in reply.cards] == ["B0CHAINSW1"]  # catalog mention lookup still works
        ruled = await client.chat("Where is my order MA-20481937? tracking please", customer_id=CUSTOMER)
        assert ruled.rule_decided and "UPS" in ruled.answer and not ruled.degraded
        with pytest.raises(client_errors.Unavailable) as err:  # nothing to degrade to
            await client.classify(["is this in stock"])
        assert err.value.reason == "backend_unreachable"


async def test_backend_overloaded(make_server, backend):
    server = await make_server()
    backend.failures = {"classify": BackendOverloaded("Exceeds maximum queue size", model="intent_classifier")}
    async with AsyncMangaAssistClient(server.target) as client:
        reply = await client.chat("any discount on Frieren?")
        assert "classifier_unavailable" in reply.degraded
        with pytest.raises(client_errors.Overloaded) as err:
            await client.classify(["any discount on Frieren?"])
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and err.value.reason == "backend_overloaded"


async def test_adapter_failure_falls_back_to_base_embedding(make_server, backend):
    server = await make_server()
    backend.failures = {"adapt": BackendError("adapter gone", model="embedding_adapter")}
    async with AsyncMangaAssistClient(server.target) as client:
        reply = await client.chat("what is your refund policy for damaged manga returns")
    assert "adapter_skipped" in reply.degraded and "30 days" in reply.answer


async def test_index_failure_degrades(make_server, backend):
    from fakes import FakeIndex

    index = FakeIndex(backend=backend)
    index.fail = RuntimeError("milvus connection reset")
    server = await make_server(index=index)
    async with AsyncMangaAssistClient(server.target) as client:
        reply = await client.chat("what is your refund policy for damaged manga returns")
        assert "retrieval_unavailable" in reply.degraded and reply.tier == "template"
        with pytest.raises(client_errors.Unavailable):
            await client.retrieve("refund")


# ------------------------------------------------------------------------------------------ admission
async def test_concurrency_cap_sheds_then_recovers(make_server, backend):
    server = await make_server(server={"max_concurrency": 2})
    gate = backend.gates["classify"] = asyncio.Event()
    async with AsyncMangaAssistClient(server.target, timeout=10) as client:
        held = [asyncio.create_task(client.chat(f"recommend something {i}")) for i in range(2)]
        for _ in range(200):
            if server.pipeline.admission.in_flight == 2:
                break
            await asyncio.sleep(0.01)
        assert server.pipeline.admission.in_flight == 2
        with pytest.raises(client_errors.Overloaded) as err:
            await client.chat("one too many")
        assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        gate.set()
        replies = await asyncio.gather(*held)
        assert all(r.answer for r in replies)
        assert (await client.chat("hello")).intent == "chitchat"


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("message", ["", "   \n\t ", "x" * 2001, "nul\x00byte"])
async def test_bad_chat_input_is_invalid_argument(server, message):
    err = await _chat_error(server.target, message)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and _reason(err) == "invalid_argument"
    async with AsyncMangaAssistClient(server.target) as client:
        assert (await client.chat("hello")).answer  # still serving


async def test_bad_classify_and_retrieve_input(aclient):
    with pytest.raises(client_errors.InvalidRequest, match="limit is 64"):
        await aclient.classify(["hi"] * 65)
    with pytest.raises(client_errors.InvalidRequest, match="empty"):
        await aclient.classify([])
    with pytest.raises(client_errors.InvalidRequest, match=r"texts\[1\]"):
        await aclient.classify(["hi", " "])
    with pytest.raises(client_errors.InvalidRequest, match="top_k"):
        await aclient.retrieve("refund", top_k=51)


async def test_oversized_message_is_resource_exhausted(make_server):
    server = await make_server(server={"max_message_bytes": 4096, "max_text_chars": 100_000})
    err = await _chat_error(server.target, "x" * 10_000)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    async with AsyncMangaAssistClient(server.target) as client:
        assert (await client.chat("hello")).answer


async def test_malformed_protobuf_is_invalid_argument(server):
    async with grpc.aio.insecure_channel(server.target) as channel:
        raw = channel.unary_unary("/mangaassist.v1.MangaAssist/Chat")  # bytes in, bytes out
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw(b"\x12\x05\xff\xfe\xfd\xfc\xfb")  # field 2 (message) with invalid UTF-8
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw(b"\xff\xff\xff")  # not a protobuf at all
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    async with AsyncMangaAssistClient(server.target) as client:
        assert (await client.chat("hello")).answer


# ------------------------------------------------------------------------------------------ errors
async def test_unknown_exception_is_internal_with_generic_message(make_server, backend, caplog):
    server = await make_server()
    backend.failures = {"classify": KeyError("secret internal detail")}
    with caplog.at_level(logging.ERROR, logger="server.interceptors"):
        err = await _chat_error(server.target, "recommend something")
    assert err.code() == grpc.StatusCode.INTERNAL
    assert err.details() == "internal error" and "secret" not in err.details()
    assert _reason(err) == "internal"
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)
    async with AsyncMangaAssistClient(server.target) as client:
        with pytest.raises(client_errors.InternalError):
            await client.chat("recommend something")
        assert (await client.chat("hello")).answer


async def test_batch_contract_violation_is_a_bug(make_server, backend):
    import numpy as np

    async def wrong_rows(texts, *, timeout_s):
        return np.zeros((len(texts) + 1, 8), np.float32)

    server = await make_server()
    backend.classify = wrong_rows  # type: ignore[method-assign]
    async with AsyncMangaAssistClient(server.target) as client:
        with pytest.raises(client_errors.InternalError, match="this is a bug"):
            await client.classify(["recommend something"])


# ------------------------------------------------------------------------------------------ drain
async def test_drain_finishes_in_flight_and_refuses_new(make_server, backend):
    server = await make_server()
    gate = backend.gates["classify"] = asyncio.Event()
    async with AsyncMangaAssistClient(server.target, timeout=10) as client:
        in_flight = asyncio.create_task(client.chat("recommend something"))
        for _ in range(200):
            if server.pipeline.admission.in_flight:
                break
            await asyncio.sleep(0.01)
        drain = asyncio.create_task(server.drain(grace_s=5))
        for _ in range(200):
            if server.pipeline.admission.draining:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(client_errors.Unavailable):
            await client.chat("hello")
        gate.set()
        reply = await in_flight
        assert reply.answer
        await asyncio.wait_for(drain, 5)
    assert backend.closed


async def test_readiness_not_serving_while_draining(make_server, backend):
    server = await make_server()
    gate = backend.gates["classify"] = asyncio.Event()
    async with AsyncMangaAssistClient(server.target, timeout=10) as client:
        held = asyncio.create_task(client.chat("recommend something"))
        for _ in range(200):
            if server.pipeline.admission.in_flight:
                break
            await asyncio.sleep(0.01)
        await server.health.enter_graceful_shutdown()
        from grpc_health.v1 import health_pb2

        assert server.health._server_status["readiness"] == health_pb2.HealthCheckResponse.NOT_SERVING
        assert server.health._server_status["liveness"] == health_pb2.HealthCheckResponse.SERVING
        gate.set()
        await held


# ------------------------------------------------------------------------------------------ auth
async def test_token_auth(make_server):
    server = await make_server(server={"auth_tokens": ("s3cret", "other")})
    async with AsyncMangaAssistClient(server.target) as anonymous:
        with pytest.raises(client_errors.Unauthenticated):
            await anonymous.chat("hello")
        with pytest.raises(client_errors.Unauthenticated):
            await anonymous.describe()
        assert await anonymous.health("liveness") == "SERVING"  # probes carry no token
    async with AsyncMangaAssistClient(server.target, token="wrong") as bad:
        with pytest.raises(client_errors.Unauthenticated):
            await bad.classify(["hello"])
    async with AsyncMangaAssistClient(server.target, token="s3cret") as good:
        assert (await good.chat("hello")).intent == "chitchat"
        assert [x async for x in good.chat_stream("hello")][-1].final.intent == "chitchat"
