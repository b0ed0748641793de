"""The model-backend contract the pipeline codes against (Triton in production, a fake in tests).

Every call takes ``timeout_s`` (what the request's budget allows) and raises the
:class:`~server.errors.BackendError` family on failure: ``BackendOverloaded`` (queue full / queue timeout,
never retry blindly), ``BackendTimeout`` (ran past ``timeout_s``), ``BackendError`` (unreachable, circuit
open, bad reply). Outputs are checked: one row per input row, else :class:`~server.errors.InternalBug`.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from contracts.models import EMBED_DIM, INTENT_LABELS
from server.errors import InternalBug

NUM_INTENTS = len(INTENT_LABELS)
EMBEDDING_DIM = EMBED_DIM


@runtime_checkable
class ModelBackend(Protocol):
    async def classify(self, texts: Sequence[str], *, timeout_s: float, version: str | None = None) -> np.ndarray:
        """[n, 8] float32 softmax probabilities in INTENT_LABELS order. ``version``: the classifier version a
        rollout picked for this request (server/rollout); None = the configured one."""
        ...

    async def embed(self, texts: Sequence[str], *, timeout_s: float) -> np.ndarray:
        """[n, 384] float32 L2-normalised query embeddings."""
        ...

    async def adapt(self, vectors: np.ndarray, *, timeout_s: float) -> np.ndarray:
        """[n, 384] float32 adapted, L2-normalised embeddings."""
        ...

    async def rerank(self, query: str, passages: Sequence[str], *, timeout_s: float) -> np.ndarray:
        """[n] float32 relevance logits, one per passage (higher = more relevant)."""
        ...

    async def is_ready(self) -> bool: ...

    async def model_versions(self) -> dict[str, str]: ...

    async def close(self) -> None: ...


def check_rows(model: str, output: np.ndarray, rows: int, width: int | None) -> np.ndarray:
    """The batch contract: ``rows`` outputs for ``rows`` inputs (and the declared width)."""
    if output.shape[0] != rows or (width is not None and (output.ndim != 2 or output.shape[1] != width)):
        want = f"[{rows}, {width}]" if width is not None else f"[{rows}]"
        raise InternalBug(f"{model} returned shape {list(output.shape)} for {rows} inputs, expected {want}")
    return output
