"""TritonBackend against an in-process server speaking Triton's gRPC protocol (tritonclient's own protos):
tensor layout of the contract's models (contracts/models.py), batching, error mapping and the circuit breaker."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import deserialize_bytes_tensor

from server.backends.triton import CircuitBreaker, TritonBackend, map_triton_error
from server.errors import BackendError, BackendOverloaded, BackendTimeout, InternalBug
from server.settings import TritonSettings

pytestmark = pytest.mark.L0


class FakeTriton(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self) -> None:
        self.mode: dict[str, str] = {}
        self.requests: list[tuple[str, dict[str, tuple[str, list[int]]]]] = []
        self.ready = True

    async def ServerReady(self, request, context):
        return service_pb2.ServerReadyResponse(ready=self.ready and getattr(self, "server_ready", True))

    async def ServerLive(self, request, context):  # readiness = live + the models called ready (client.is_ready)
        return service_pb2.ServerLiveResponse(live=True)

    async def ModelReady(self, request, context):
        return service_pb2.ModelReadyResponse(ready=self.ready)

    async def ModelMetadata(self, request, context):
        return service_pb2.ModelMetadataResponse(name=request.name, versions=["1"], platform="ensemble")

    async def ModelInfer(self, request, context):
        model = request.model_name
        self.requests.append((model, {i.name: (i.datatype, list(i.shape)) for i in request.inputs}))
        mode = self.mode.get(model, "ok")
        if mode == "queue_full":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "Exceeds maximum queue size")
        if mode == "queue_timeout":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "Request timeout expired")
        if mode == "missing":
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Request for unknown model: '{model}' is not found")
        if mode == "slow":
            await asyncio.sleep(5)
        tensors = {}
        for spec, raw in zip(request.inputs, request.raw_input_contents):
            if spec.datatype == "BYTES":
                tensors[spec.name] = deserialize_bytes_tensor(raw).reshape(list(spec.shape))
            else:
                tensors[spec.name] = np.frombuffer(raw, dtype=np.float32).reshape(list(spec.shape))
        rows = next(iter(tensors.values())).shape[0] + (1 if mode == "wrong_rows" else 0)
        if model == "intent_classifier":
            name, out = "PROBS", np.full((rows, 8), 1 / 8, np.float32)
            out[:, 2] = 0.5
        elif model == "query_embedder":
            name, out = "EMBEDDING", np.tile(np.eye(1, 384, dtype=np.float32), (rows, 1))
        elif model == "embedding_adapter":
            name, out = "ADAPTED", tensors["EMBEDDING"][:, ::-1].copy()
        else:
            name = "SCORE"
            out = np.array([[float(len(p[0]))] for p in tensors["PASSAGE"]], np.float32)
        return service_pb2.ModelInferResponse(
            model_name=model,
            outputs=[service_pb2.ModelInferResponse.InferOutputTensor(name=name, datatype="FP32", shape=list(out.shape))],
            raw_output_contents=[out.tobytes()],
        )


@pytest.fixture
async def triton():
    servicer = FakeTriton()
    server = grpc.aio.server()
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    servicer.url = f"127.0.0.1:{port}"
    yield servicer
    await server.stop(0)


@pytest.fixture
async def backend(triton):
    b = TritonBackend(TritonSettings(url=triton.url, max_batch_size=4, breaker_failures=2, breaker_cooldown_s=0.2))
    yield b
    await b.close()


async def test_tensor_contract_and_outputs(backend, triton):
    probs = await backend.classify(["hi", "where is my order"], timeout_s=2)
    assert probs.shape == (2, 8) and probs.dtype == np.float32 and probs[0, 2] == pytest.approx(0.5)
    emb = await backend.embed(["hello"], timeout_s=2)
    assert emb.shape == (1, 384)
    adapted = await backend.adapt(emb, timeout_s=2)
    assert adapted.shape == (1, 384) and adapted[0, -1] == 1.0
    scores = await backend.rerank("q", ["a", "abcd", "ab"], timeout_s=2)
    assert scores.tolist() == [1.0, 4.0, 2.0]
    seen = dict(triton.requests)
    assert seen["intent_classifier"] == {"TEXT": ("BYTES", [2, 1])}
    assert seen["query_embedder"] == {"TEXT": ("BYTES", [1, 1])}
    assert seen["embedding_adapter"] == {"EMBEDDING": ("FP32", [1, 384])}
    assert seen["reranker"] == {"QUERY": ("BYTES", [3, 1]), "PASSAGE": ("BYTES", [3, 1])}


async def test_batches_above_max_batch_size_are_split(backend, triton):
    probs = await backend.classify([f"text {i}" for i in range(10)], timeout_s=2)
    assert probs.shape == (10, 8)
    shapes = [spec["TEXT"][1] for model, spec in triton.requests if model == "intent_classifier"]
    assert sorted(s[0] for s in shapes) == [2, 4, 4]


@pytest.mark.parametrize("mode", ["queue_full", "queue_timeout"])
async def test_queue_rejections_are_overloaded_and_do_not_open_the_circuit(backend, triton, mode):
    triton.mode["intent_classifier"] = mode
    for _ in range(3):
        with pytest.raises(BackendOverloaded):
            await backend.classify(["x"], timeout_s=2)
    assert backend.breakers["intent_classifier"].state == "closed"


async def test_timeout_is_backend_timeout(backend, triton):
    triton.mode["reranker"] = "slow"
    with pytest.raises(BackendTimeout):  # the deadline's own error; a call that hung ends in wait_for's TimeoutError
        await asyncio.wait_for(backend.rerank("q", ["p"], timeout_s=0.1), 30)


async def test_wrong_row_count_is_a_bug(backend, triton):
    triton.mode["intent_classifier"] = "wrong_rows"
    with pytest.raises(InternalBug, match="this is a bug"):
        await backend.classify(["a", "b"], timeout_s=2)


async def test_missing_model_is_backend_error(backend, triton):
    triton.mode["query_embedder"] = "missing"
    with pytest.raises(BackendError) as err:
        await backend.embed(["a"], timeout_s=2)
    assert not isinstance(err.value, (BackendOverloaded, BackendTimeout))


async def test_readiness_and_versions(backend, triton):
    assert await backend.is_ready()
    assert await backend.model_versions() == {
        "intent_classifier": "1", "query_embedder": "1", "embedding_adapter": "1", "reranker": "1"
    }
    # a model (re)loading: strict server readiness reads false while the models called stay ready -- still ready
    triton.server_ready = False
    assert await backend.is_ready()
    triton.ready = False
    assert not await backend.is_ready()


async def test_dead_triton_opens_the_circuit_then_recovers():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    backend = TritonBackend(TritonSettings(url=f"127.0.0.1:{dead_port}", breaker_failures=2, breaker_cooldown_s=0.2))
    revived = None
    try:
        assert not await backend.is_ready()
        for _ in range(2):
            with pytest.raises(BackendError) as err:
                await backend.embed(["x"], timeout_s=1)
            assert err.value.reason == "backend_unreachable"
        assert backend.breakers["query_embedder"].state == "open"
        with pytest.raises(BackendError) as err:
            await backend.embed(["x"], timeout_s=1)
        assert err.value.reason == "circuit_open"  # refused by the open breaker: no connection attempt

        # Triton comes back on the same port (what the supervisor's restart does)
        servicer = FakeTriton()
        revived = grpc.aio.server()
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, revived)
        assert revived.add_insecure_port(f"127.0.0.1:{dead_port}") == dead_port
        await revived.start()
        assert backend.breakers["query_embedder"].state == "open" and not servicer.requests
        deadline = asyncio.get_running_loop().time() + 10
        while True:  # half-open after the cooldown: one trial call; reconnect back-off may fail a first one
            try:
                out = await backend.embed(["x"], timeout_s=1)
                break
            except BackendError as err:
                assert err.reason in ("circuit_open", "backend_unreachable"), err
                assert asyncio.get_running_loop().time() < deadline, "the circuit never closed again"
                await asyncio.sleep(0.05)
        assert out.shape == (1, 384) and backend.breakers["query_embedder"].state == "closed"
        # closed: the next calls go straight through to the revived server, which saw each of them
        seen = len(servicer.requests)
        await backend.embed(["y"], timeout_s=1)
        await backend.classify(["z"], timeout_s=1)
        assert [m for m, _ in servicer.requests[seen:]] == ["query_embedder", "intent_classifier"]
    finally:
        await backend.close()
        if revived is not None:
            await revived.stop(0)


def test_circuit_breaker_states():
    now = [0.0]
    breaker = CircuitBreaker(failures=2, cooldown_s=1.0, clock=lambda: now[0])
    assert breaker.allow() and breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 1.5
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.record_failure()  # the trial failed: open again, cooldown restarts
    assert breaker.state == "open"
    now[0] = 3.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()


def test_error_mapping_by_status_and_message():
    from tritonclient.utils import InferenceServerException as E

    assert isinstance(map_triton_error("m", E("Exceeds maximum queue size", "StatusCode.UNAVAILABLE")), BackendOverloaded)
    assert isinstance(map_triton_error("m", E("Request timeout expired", "StatusCode.UNAVAILABLE")), BackendOverloaded)
    assert isinstance(map_triton_error("m", E("Deadline Exceeded", "StatusCode.DEADLINE_EXCEEDED")), BackendTimeout)
    unreachable = map_triton_error("m", E("failed to connect to all addresses", "StatusCode.UNAVAILABLE"))
    assert type(unreachable) is BackendError and unreachable.reason == "backend_unreachable"
    assert type(map_triton_error("m", E("unknown model", "StatusCode.NOT_FOUND"))) is BackendError
