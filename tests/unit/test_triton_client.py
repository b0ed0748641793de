"""The one Triton client (server/backends/client.py) against an in-process server speaking Triton's gRPC
protocol: what every call carries (request id, model version, traceparent), the LLM tier and the scorer
tripping and recovering through the same per-model breaker as the classifier, and slow != dead."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from contracts import models as contract
from server.backends.client import TritonClient, channel_args
from server.backends.triton import TritonBackend
from server.errors import BackendError, BackendTimeout
from server.hallucination import FallbackScoreFn, lexical_score_fn
from server.hallucination.scorer import TritonScoreFn
from server.llm.base import LLMRequest
from server.llm.local import LocalTier
from server.llm.router import TierRouter
from server.llm.templates import Facts, TemplateTier
from server.request import request_id_bound
from server.settings import TritonSettings

pytestmark = pytest.mark.L0


def _bytes_output(name: str, value: str) -> tuple[service_pb2.ModelInferResponse.InferOutputTensor, bytes]:
    data = value.encode()
    raw = struct.pack("<I", len(data)) + data  # Triton's BYTES wire format: 4-byte length, then the bytes
    return service_pb2.ModelInferResponse.InferOutputTensor(name=name, datatype="BYTES", shape=[1]), raw


class FakeTriton(service_pb2_grpc.GRPCInferenceServiceServicer):
    """Records (model, id, version, parameters, metadata) of every call; ``slow_s`` delays inference."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.slow_s = 0.0

    def _record(self, request, context) -> None:
        params = {k: v.string_param for k, v in request.parameters.items()}
        metadata = dict(context.invocation_metadata() or ())
        self.calls.append({"model": request.model_name, "id": request.id, "version": request.model_version,
                           "parameters": params, "traceparent_header": metadata.get("traceparent")})

    async def ServerLive(self, request, context):
        return service_pb2.ServerLiveResponse(live=True)

    async def ModelInfer(self, request, context):
        self._record(request, context)
        if self.slow_s:
            await asyncio.sleep(self.slow_s)
        rows = request.inputs[0].shape[0]
        width = contract.PROBS.dims[0] if request.model_name == contract.INTENT_CLASSIFIER.name else 1
        name = "PROBS" if width > 1 else "SCORE"
        out = np.full((rows, width), -2.0, np.float32)
        return service_pb2.ModelInferResponse(
            model_name=request.model_name,
            outputs=[service_pb2.ModelInferResponse.InferOutputTensor(name=name, datatype="FP32", shape=[rows, width])],
            raw_output_contents=[out.tobytes()],
        )

    async def ModelStreamInfer(self, request_iterator, context):
        async for request in request_iterator:
            self._record(request, context)
            tensors = [_bytes_output("TEXT_DELTA", "Vol. 1 is in stock."), _bytes_output("FINISH_REASON", "stop")]
            usage = service_pb2.ModelInferResponse.InferOutputTensor(name="USAGE", datatype="INT32", shape=[2])
            yield service_pb2.ModelStreamInferResponse(infer_response=service_pb2.ModelInferResponse(
                model_name=request.model_name, id=request.id,
                outputs=[tensors[0][0], usage, tensors[1][0]],
                raw_output_contents=[tensors[0][1], np.array([700, 5], np.int32).tobytes(), tensors[1][1]],
            ))


class Server:
    """The fake on a fixed port that can be stopped and started again (a Triton restart)."""

    def __init__(self) -> None:
        self.servicer = FakeTriton()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._server: grpc.aio.Server | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = grpc.aio.server()
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(self.servicer, self._server)
        assert self._server.add_insecure_port(self.url) == self.port
        await self._server.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)
            self._server = None


@pytest.fixture
async def fake():
    server = Server()
    await server.start()
    yield server
    await server.stop()


def llm_request(**kw) -> LLMRequest:
    base = dict(intent="product_question", user_message="Is vol 1 in stock?", context=(), temperature=0.0,
                max_tokens=16, timeout_s=2.0, session_id="s1")
    return LLMRequest(**{**base, **kw})


def test_channel_balances_round_robin_with_keepalive_and_limits():
    args = dict(channel_args(TritonSettings()))
    assert args["grpc.lb_policy_name"] == "round_robin"
    assert args["grpc.keepalive_time_ms"] > 0 and args["grpc.keepalive_permit_without_calls"] == 0
    assert args["grpc.max_receive_message_length"] == args["grpc.max_send_message_length"] == 64 * 1024 * 1024
    assert "grpc.lb_policy_name" not in dict(channel_args(TritonSettings(load_balancing="")))


async def test_every_call_carries_request_id_model_version_and_traceparent(fake):
    from opentelemetry.sdk.trace import TracerProvider

    triton = TritonClient(TritonSettings(url=fake.url, model_versions={"llm_small": "3"}))
    backend = TritonBackend(TritonSettings(url=fake.url), triton=triton)
    tier = LocalTier(triton=triton)
    scorer = TritonScoreFn(triton)
    tracer = TracerProvider().get_tracer("test")
    try:
        with request_id_bound("chat-42"):
            await backend.classify(["hi"], timeout_s=2)
            await tier.generate(llm_request())
            await scorer(["source"], ["claim"])
            with tracer.start_as_current_span("stage") as span:
                await backend.classify(["hi"], timeout_s=2)
        await backend.classify(["no request bound"], timeout_s=2)
    finally:
        await triton.close()
    calls = fake.servicer.calls
    assert [(c["model"], c["id"], c["version"]) for c in calls] == [
        ("intent_classifier", "chat-42", "1"), ("llm_small", "chat-42", "3"), ("hallucination_scorer", "chat-42", "1"),
        ("intent_classifier", "chat-42", "1"), ("intent_classifier", "", "1"),
    ]
    sc = span.get_span_context()
    parent = f"00-{sc.trace_id:032x}-{sc.span_id:016x}-01"
    assert calls[3]["parameters"] == {"traceparent": parent} and calls[3]["traceparent_header"] == parent
    assert all(not c["parameters"] and c["traceparent_header"] is None for c in calls[:3])


async def test_llm_tier_and_scorer_trip_and_recover_through_the_shared_breaker(fake):
    triton = TritonClient(TritonSettings(url=fake.url, breaker_failures=2, breaker_cooldown_s=0.3))
    router = TierRouter(TemplateTier(), {"small": LocalTier(triton=triton)})
    scorer = FallbackScoreFn(TritonScoreFn(triton), lexical_score_fn(), retry_after_s=0.0)
    backend = TritonBackend(TritonSettings(url=fake.url), triton=triton)
    try:
        answer, degraded = await router.generate("small", llm_request(), Facts())
        assert answer.tier == "small" and degraded == []
        await scorer(["s"], ["c"])
        assert not scorer.using_fallback

        await fake.stop()  # Triton goes away
        for _ in range(2):
            answer, degraded = await router.generate("small", llm_request(), Facts())
            assert answer.tier == "template" and degraded == ["tier_fallback:small->template"]
            await scorer(["s"], ["c"])
            assert scorer.using_fallback
            with pytest.raises(BackendError):
                await backend.classify(["x"], timeout_s=1)
        assert {m: triton.breakers[m].state for m in ("llm_small", "hallucination_scorer", "intent_classifier")} == {
            "llm_small": "open", "hallucination_scorer": "open", "intent_classifier": "open"}
        answer, degraded = await router.generate("small", llm_request(), Facts())  # fails fast: circuit open
        with pytest.raises(BackendError) as err:
            await backend.classify(["x"], timeout_s=1)
        assert err.value.reason == "circuit_open"  # refused by the open breaker, not a connection attempt
        assert degraded == ["tier_fallback:small->template"]

        await fake.start()  # Triton is back: after the cooldown one trial call per model closes its circuit
        deadline = time.monotonic() + 5.0  # the channel reconnects (back-off capped near the cooldown)
        while True:
            await asyncio.sleep(0.35)
            answer, degraded = await router.generate("small", llm_request(), Facts())
            if answer.tier == "small" or time.monotonic() > deadline:
                break
        assert answer.tier == "small" and degraded == []
        await scorer(["s"], ["c"])
        assert not scorer.using_fallback
        await backend.classify(["x"], timeout_s=1)
        assert {b.state for b in triton.breakers.values()} == {"closed"}
    finally:
        await triton.close()


async def test_slow_triton_timeouts_leave_the_breaker_closed_dead_ones_open_it(fake):
    fake.servicer.slow_s = 1.0  # alive (answers ServerLive) but slower than every call's budget
    slow = TritonBackend(TritonSettings(url=fake.url, breaker_failures=2, breaker_cooldown_s=30))
    try:
        for _ in range(4):
            with pytest.raises(BackendTimeout):
                await slow.classify(["x"], timeout_s=0.05)
            await asyncio.sleep(0.05)  # the liveness probe's verdict
        assert slow.breakers["intent_classifier"].state == "closed"
    finally:
        await slow.close()

    # a dead Triton that never resets the connection: a listener that accepts and never speaks HTTP/2
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(16)
    dead = TritonBackend(TritonSettings(url=f"127.0.0.1:{blackhole.getsockname()[1]}", breaker_failures=2,
                                        breaker_cooldown_s=30, liveness_probe_s=0.1))
    try:
        for _ in range(2):
            with pytest.raises(BackendTimeout):
                await dead.classify(["x"], timeout_s=0.05)
            await asyncio.sleep(0.2)  # the probe gets no answer either: a failure
        assert dead.breakers["intent_classifier"].state == "open"
        with pytest.raises(BackendError) as err:
            await dead.classify(["x"], timeout_s=0.05)
        assert err.value.reason == "circuit_open"
    finally:
        await dead.close()
        blackhole.close()


async def test_streamed_llm_tier_falls_back_and_recovers_through_the_same_breaker(fake):
    """ChatStream's path (TierRouter.stream -> LocalTier.stream -> TritonClient.stream): the same fallback
    chain as generate, and the same per-model breaker as the classifier."""
    triton = TritonClient(TritonSettings(url=fake.url, breaker_failures=2, breaker_cooldown_s=0.3))
    router = TierRouter(TemplateTier(), {"small": LocalTier(triton=triton)})
    backend = TritonBackend(TritonSettings(url=fake.url), triton=triton)

    async def stream() -> tuple[list[str], object, list[str]]:
        items = [item async for item in router.stream("small", llm_request(), Facts())]
        answer, degraded = items[-1]
        return items[:-1], answer, degraded

    try:
        pieces, answer, degraded = await stream()
        assert pieces == ["Vol. 1 is in stock.\n"] and answer.tier == "small" and degraded == []

        await fake.stop()  # Triton goes away: the stream fails before its first piece, the template answers
        for _ in range(2):
            pieces, answer, degraded = await stream()
            assert answer.tier == "template" and pieces == [answer.text] and degraded == ["tier_fallback:small->template"]
            with pytest.raises(BackendError):
                await backend.classify(["x"], timeout_s=1)
        assert triton.breakers["llm_small"].state == triton.breakers["intent_classifier"].state == "open"

        await fake.start()
        deadline = time.monotonic() + 5.0
        while True:
            await asyncio.sleep(0.35)
            pieces, answer, degraded = await stream()
            if answer.tier == "small" or time.monotonic() > deadline:
                break
        assert answer.tier == "small" and degraded == [] and triton.breakers["llm_small"].state == "closed"
    finally:
        await triton.close()
