"""The production model backend: Triton over gRPC (``tritonclient.grpc.aio``).

Model contract (CONTRACTS.md): ``intent_classifier`` TEXT[1] BYTES -> PROBS[8]; ``query_embedder`` TEXT[1]
-> EMBEDDING[384]; ``embedding_adapter`` EMBEDDING[384] -> ADAPTED[384]; ``reranker`` QUERY[1], PASSAGE[1]
-> SCORE[1], one row per (query, passage) pair. Batches above ``max_batch_size`` are split and the
slices sent concurrently.

Every call gets ``client_timeout = timeout_s`` (our deadline propagation; gRPC cancels the call at the
deadline and a cancelled asyncio task cancels it too). Errors are mapped onto the service's hierarchy:

- queue full ("Exceeds maximum queue size"), queue timeout ("Request timeout expired"), RESOURCE_EXHAUSTED
  -> :class:`BackendOverloaded` -- Triton is alive and shedding; never retried here;
- DEADLINE_EXCEEDED -> :class:`BackendTimeout`;
- anything else (connection refused, UNAVAILABLE, model missing) -> :class:`BackendError`.

A per-model :class:`CircuitBreaker` opens after ``breaker_failures`` consecutive timeouts/connection
errors, so a dead Triton costs microseconds per request (``reason="circuit_open"``) instead of a timeout;
after ``breaker_cooldown_s`` one trial call is let through (half-open).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Sequence

import numpy as np

from server.aio import concurrently
from server.backends.base import EMBEDDING_DIM, NUM_INTENTS, check_rows
from server.errors import BackendError, BackendOverloaded, BackendTimeout, InternalBug
from server.settings import TritonSettings

log = logging.getLogger(__name__)

_OVERLOAD_MARKERS = ("exceeds maximum queue size", "request timeout expired", "queue is full", "timeout in queue")


class CircuitBreaker:
    """closed --N consecutive failures--> open --cooldown--> half-open --trial ok--> closed (else open)."""

    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures_to_open = max(1, failures)
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._trial_in_flight = False
        self._consecutive += 1
        if self._opened_at is not None or self._consecutive >= self.failures_to_open:
            self._opened_at = self._clock()  # (re)open: a failed trial restarts the cooldown

    def release(self) -> None:
        """The call ended without a verdict (cancelled, overloaded): let another trial through."""
        self._trial_in_flight = False


def map_triton_error(model: str, err: Exception) -> BackendError:
    """tritonclient's InferenceServerException (status like "StatusCode.UNAVAILABLE") -> our hierarchy."""
    status = str(getattr(err, "status", lambda: "")() or "")
    message = getattr(err, "message", lambda: None)() or str(err)
    lowered = message.lower()
    text = f"{model}: {message}"
    if any(marker in lowered for marker in _OVERLOAD_MARKERS) or status.endswith("RESOURCE_EXHAUSTED"):
        return BackendOverloaded(text, model=model)
    if status.endswith("DEADLINE_EXCEEDED") or "deadline exceeded" in lowered:
        return BackendTimeout(text, model=model)
    if status.endswith("UNAVAILABLE"):
        return BackendError(text, model=model, reason="backend_unreachable")
    return BackendError(text, model=model)


class TritonBackend:
    def __init__(self, settings: TritonSettings, *, client: Any | None = None) -> None:
        from tritonclient.grpc import aio as triton_aio

        self.settings = settings
        self._client = client if client is not None else triton_aio.InferenceServerClient(settings.url)
        self._models = (
            settings.classifier_model,
            settings.embedder_model,
            settings.adapter_model,
            settings.reranker_model,
        )
        self.breakers = {m: CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s) for m in self._models}
        self._versions: dict[str, str] | None = None

    # ------------------------------------------------------------------ the contract
    async def classify(self, texts: Sequence[str], *, timeout_s: float) -> np.ndarray:
        model = self.settings.classifier_model
        out = await self._infer_batched(model, {"TEXT": _bytes_column(texts)}, "PROBS", timeout_s)
        return check_rows(model, out, len(texts), NUM_INTENTS)

    async def embed(self, texts: Sequence[str], *, timeout_s: float) -> np.ndarray:
        model = self.settings.embedder_model
        out = await self._infer_batched(model, {"TEXT": _bytes_column(texts)}, "EMBEDDING", timeout_s)
        return check_rows(model, out, len(texts), EMBEDDING_DIM)

    async def adapt(self, vectors: np.ndarray, *, timeout_s: float) -> np.ndarray:
        model = self.settings.adapter_model
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        out = await self._infer_batched(model, {"EMBEDDING": vectors}, "ADAPTED", timeout_s)
        return check_rows(model, out, len(vectors), EMBEDDING_DIM)

    async def rerank(self, query: str, passages: Sequence[str], *, timeout_s: float) -> np.ndarray:
        model = self.settings.reranker_model
        inputs = {"QUERY": _bytes_column([query] * len(passages)), "PASSAGE": _bytes_column(passages)}
        out = await self._infer_batched(model, inputs, "SCORE", timeout_s)
        return check_rows(model, out.reshape(len(out), -1), len(passages), 1).reshape(-1)

    async def is_ready(self) -> bool:
        timeout = self.settings.ready_timeout_s
        try:
            if not await self._client.is_server_ready(client_timeout=timeout):
                return False
            ready = await asyncio.gather(*(self._client.is_model_ready(m, client_timeout=timeout) for m in self._models))
            return all(ready)
        except Exception as err:  # noqa: BLE001 -- readiness is a yes/no question; the reason goes to the log
            log.info("triton not ready: %s", err)
            return False

    async def model_versions(self) -> dict[str, str]:
        if self._versions is not None:
            return dict(self._versions)
        versions: dict[str, str] = {}
        complete = True
        for model in self._models:
            try:
                meta = await self._client.get_model_metadata(
                    model, as_json=True, client_timeout=self.settings.ready_timeout_s
                )
                versions[model] = ",".join(meta.get("versions", [])) or "unknown"
            except Exception as err:  # noqa: BLE001 -- informational (Describe); never fails a request
                log.info("no metadata for %s: %s", model, err)
                versions[model] = "unavailable"
                complete = False
        if complete:
            self._versions = versions
        return dict(versions)

    async def close(self) -> None:
        await self._client.close()

    # ------------------------------------------------------------------ transport
    async def _infer_batched(
        self, model: str, inputs: dict[str, np.ndarray], output: str, timeout_s: float
    ) -> np.ndarray:
        rows = len(next(iter(inputs.values())))
        size = self.settings.max_batch_size
        if rows <= size:
            return await self._infer(model, inputs, output, timeout_s)
        slices = [{k: v[i : i + size] for k, v in inputs.items()} for i in range(0, rows, size)]
        parts = await concurrently(*(self._infer(model, part, output, timeout_s) for part in slices))
        return np.concatenate(parts, axis=0)

    async def _infer(self, model: str, inputs: dict[str, np.ndarray], output: str, timeout_s: float) -> np.ndarray:
        from tritonclient.grpc import InferInput, InferRequestedOutput
        from tritonclient.utils import InferenceServerException

        breaker = self.breakers[model]
        if not breaker.allow():
            raise BackendError(f"{model}: circuit open after repeated failures", model=model, reason="circuit_open")
        infer_inputs = []
        for name, array in inputs.items():
            datatype = "BYTES" if array.dtype == object else "FP32"
            item = InferInput(name, list(array.shape), datatype)
            item.set_data_from_numpy(array)
            infer_inputs.append(item)
        queue_timeout_us = int(timeout_s * 1e6) if self.settings.send_queue_timeout else None
        verdict: Callable[[], None] = breaker.release
        try:
            result = await self._client.infer(
                model,
                infer_inputs,
                outputs=[InferRequestedOutput(output)],
                client_timeout=timeout_s,
                timeout=queue_timeout_us,
            )
            verdict = breaker.record_success
        except InferenceServerException as err:
            mapped = map_triton_error(model, err)
            if not isinstance(mapped, BackendOverloaded):
                verdict = breaker.record_failure
            raise mapped from None
        finally:
            verdict()
        array = result.as_numpy(output)
        if array is None:
            raise InternalBug(f"{model} answered without output {output}")
        return array


def _bytes_column(texts: Sequence[str]) -> np.ndarray:
    """[n, 1] BYTES tensor (Triton TYPE_STRING with dims [1] and batching)."""
    return np.array([[t.encode("utf-8")] for t in texts], dtype=object).reshape(len(texts), 1)
