"""A Triton model repository of slow stand-ins for the request-path models, for reliability tests on a real
tritonserver: each model holds a request for the ``hold:<ms>`` its text names and logs what Triton saw
(arrival, per-request timeout, answered or cancelled) to one JSON-lines file. See ``model.py``.

Models (the service points ``triton.*_model`` at them, see :data:`SERVICE_MODELS`):

- ``slow_classifier`` / ``slow_embedder``: TEXT -> PROBS[8] / EMBEDDING[384], dynamic batching with a 100 ms
  window so a few chats sent together share one execution (one instance each);
- ``slow_adapter``: answers at once; ``slow_reranker``: holds for the ``slowrank:<ms>`` its QUERY names (no
  batching, one instance: a held call delays the next one unless Triton cancels it);
- ``bounded_classifier``: no batching (max batch 1), one instance, and a queue policy of one waiting request
  (``max_queue_size: 1``, REJECT): a burst overflows it the way a saturated Triton sheds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

MODEL_PY = Path(__file__).resolve().parent / "model.py"

SERVICE_MODELS = {
    "classifier_model": "slow_classifier",
    "embedder_model": "slow_embedder",
    "adapter_model": "slow_adapter",
    "reranker_model": "slow_reranker",
}

_TENSORS = {
    "classifier": ([("TEXT", "TYPE_STRING", 1)], [("PROBS", "TYPE_FP32", 8)]),
    "embedder": ([("TEXT", "TYPE_STRING", 1)], [("EMBEDDING", "TYPE_FP32", 384)]),
    "adapter": ([("EMBEDDING", "TYPE_FP32", 384)], [("ADAPTED", "TYPE_FP32", 384)]),
    "reranker": ([("QUERY", "TYPE_STRING", 1), ("PASSAGE", "TYPE_STRING", 1)], [("SCORE", "TYPE_FP32", 1)]),
}

_BATCHED = "dynamic_batching { max_queue_delay_microseconds: 100000 }"
_BOUNDED = ("dynamic_batching { default_queue_policy { max_queue_size: 1 timeout_action: REJECT "
            "default_timeout_microseconds: 10000000 allow_timeout_override: true } }")
MODELS = {
    "slow_classifier": ("classifier", 8, _BATCHED),
    "slow_embedder": ("embedder", 8, _BATCHED),
    "slow_adapter": ("adapter", 256, ""),
    "slow_reranker": ("reranker", 64, ""),
    "bounded_classifier": ("classifier", 1, _BOUNDED),
}


def _tensor(kind: str, name: str, dtype: str, dim: int) -> str:
    return f'{kind} {{ name: "{name}" data_type: {dtype} dims: [ {dim} ] }}'


def make_repository(dest: Path, events: Path, models: tuple[str, ...] = tuple(MODELS)) -> Path:
    """Lay out ``models`` under ``dest`` (created), each logging to ``events``; returns ``dest``."""
    for name in models:
        role, max_batch, batching = MODELS[name]
        inputs, outputs = _TENSORS[role]
        version = dest / name / "1"
        version.mkdir(parents=True, exist_ok=True)
        shutil.copy(MODEL_PY, version / "model.py")
        config = "\n".join([
            f'name: "{name}"', 'backend: "python"', f"max_batch_size: {max_batch}",
            *(_tensor("input", *t) for t in inputs), *(_tensor("output", *t) for t in outputs),
            "instance_group { count: 1 kind: KIND_CPU }", batching,
            f'parameters {{ key: "role" value {{ string_value: "{role}" }} }}',
            f'parameters {{ key: "events" value {{ string_value: "{events}" }} }}',
        ])
        (dest / name / "config.pbtxt").write_text(config + "\n")
    return dest


def read_events(events: Path) -> list[dict[str, Any]]:
    if not events.is_file():
        return []
    return [json.loads(line) for line in events.read_text().splitlines() if line.strip()]


class CountingProxy:
    """A gRPC pass-through in front of a tritonserver that counts the ModelInfer calls per model: what left
    the service, including the ones Triton rejects before any model or metric sees them. Deadlines and
    cancellation pass through (each call is forwarded with the caller's remaining time, as an awaited task)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.infers: dict[str, int] = {}
        self.target = ""
        self._server = None
        self._channel = None

    async def start(self) -> "CountingProxy":
        import grpc
        from tritonclient.grpc import service_pb2

        self._channel = grpc.aio.insecure_channel(self.upstream)
        proxy = self

        class Forward(grpc.GenericRpcHandler):
            def service(self, details):
                method = details.method

                async def unary(raw: bytes, context):
                    if method.endswith("/ModelInfer"):
                        model = service_pb2.ModelInferRequest.FromString(raw).model_name
                        proxy.infers[model] = proxy.infers.get(model, 0) + 1
                    try:
                        return await proxy._channel.unary_unary(method)(
                            raw, timeout=context.time_remaining(), metadata=context.invocation_metadata())
                    except grpc.aio.AioRpcError as err:
                        await context.abort(err.code(), err.details() or "")

                return grpc.unary_unary_rpc_method_handler(unary)

        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers((Forward(),))
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        self.target = f"127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)
        if self._channel is not None:
            await self._channel.close()
