"""The production model backend: the request-path models on Triton, through the one Triton client.

Model contract (``contracts/models.py``): ``intent_classifier`` TEXT -> PROBS[8] (INTENT_LABELS
order); ``query_embedder`` TEXT -> EMBEDDING[384]; ``embedding_adapter`` EMBEDDING[384] -> ADAPTED[384];
``reranker`` QUERY, PASSAGE -> SCORE[1], one row per (query, passage) pair. Every reply is checked: one row
per input row and the contract's width, else :class:`~server.errors.InternalBug`.

The channel, the per-model circuit breakers, the error mapping, deadlines, request ids and model versions
are :class:`~server.backends.client.TritonClient`'s (shared with the LLM tier and the hallucination scorer).
"""

from __future__ import annotations

import logging
import time
from typing import Sequence

import numpy as np

from contracts import models as contract
from contracts.models import CLASSIFIER_TOKENIZER, VERSIONED_CLASSIFIER
from server.backends.base import check_rows
from server.backends.client import CircuitBreaker, TritonClient, bytes_column, map_triton_error
from server.settings import TritonSettings

log = logging.getLogger(__name__)

__all__ = ["CircuitBreaker", "TritonBackend", "map_triton_error"]

_TEXT = contract.TEXT.name
_QUERY, _PASSAGE = (t.name for t in contract.RERANKER.inputs)
_TOKENS = ("input_ids", "attention_mask", "token_type_ids")


class TritonBackend:
    def __init__(self, settings: TritonSettings, *, triton: TritonClient | None = None) -> None:
        """``triton``: the process's shared client (``build_components``); without one the backend owns one."""
        self.settings = settings
        self.triton = triton if triton is not None else TritonClient(settings)
        self._models = (
            settings.classifier_model,
            settings.embedder_model,
            settings.adapter_model,
            settings.reranker_model,
        )
        for model in self._models:
            self.triton.breaker(model)
        self._versions: dict[str, str] | None = None

    @property
    def breakers(self) -> dict[str, CircuitBreaker]:
        return self.triton.breakers

    # ------------------------------------------------------------------ the contract
    async def classify(self, texts: Sequence[str], *, timeout_s: float, version: str | None = None) -> np.ndarray:
        model, (probs,) = self.settings.classifier_model, contract.INTENT_CLASSIFIER.outputs
        if version is not None:
            return await self._classify_at(texts, version, timeout_s)
        out = await self.triton.infer(model, {_TEXT: bytes_column(texts)}, [probs.name], timeout_s=timeout_s)
        return check_rows(model, out[probs.name], len(texts), probs.dims[0])

    async def _classify_at(self, texts: Sequence[str], version: str, timeout_s: float) -> np.ndarray:
        """``intent_classifier_onnx`` at ``version``, fed by ``intent_tokenizer`` (both within ``timeout_s``)."""
        (probs,) = contract.INTENT_CLASSIFIER.outputs
        deadline = time.perf_counter() + timeout_s
        tokens = await self.triton.infer(CLASSIFIER_TOKENIZER, {_TEXT: bytes_column(texts)}, _TOKENS, timeout_s=timeout_s)
        left = max(deadline - time.perf_counter(), 1e-3)
        out = await self.triton.infer(VERSIONED_CLASSIFIER, tokens, [probs.name], timeout_s=left, version=version)
        return check_rows(VERSIONED_CLASSIFIER, out[probs.name], len(texts), probs.dims[0])

    async def embed(self, texts: Sequence[str], *, timeout_s: float) -> np.ndarray:
        model, (emb,) = self.settings.embedder_model, contract.QUERY_EMBEDDER.outputs
        out = await self.triton.infer(model, {_TEXT: bytes_column(texts)}, [emb.name], timeout_s=timeout_s)
        return check_rows(model, out[emb.name], len(texts), emb.dims[0])

    async def adapt(self, vectors: np.ndarray, *, timeout_s: float) -> np.ndarray:
        model = self.settings.adapter_model
        (inp,), (adapted,) = contract.EMBEDDING_ADAPTER.inputs, contract.EMBEDDING_ADAPTER.outputs
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        out = await self.triton.infer(model, {inp.name: vectors}, [adapted.name], timeout_s=timeout_s)
        return check_rows(model, out[adapted.name], len(vectors), adapted.dims[0])

    async def rerank(self, query: str, passages: Sequence[str], *, timeout_s: float) -> np.ndarray:
        model, (score,) = self.settings.reranker_model, contract.RERANKER.outputs
        inputs = {_QUERY: bytes_column([query] * len(passages)), _PASSAGE: bytes_column(passages)}
        out = (await self.triton.infer(model, inputs, [score.name], timeout_s=timeout_s))[score.name]
        return check_rows(model, out.reshape(len(out), -1), len(passages), 1).reshape(-1)

    async def is_ready(self) -> bool:
        return await self.triton.is_ready(self._models)

    async def model_versions(self) -> dict[str, str]:
        if self._versions is not None:
            return dict(self._versions)
        versions: dict[str, str] = {}
        complete = True
        for model in self._models:
            try:
                meta = await self.triton.model_metadata(model)
                versions[model] = ",".join(meta.get("versions", [])) or "unknown"
            except Exception as err:  # noqa: BLE001 -- informational (Describe); never fails a request
                log.info("no metadata for %s: %s", model, err)
                versions[model] = "unavailable"
                complete = False
        if complete:
            self._versions = versions
        return dict(versions)

    async def close(self) -> None:
        await self.triton.close()
