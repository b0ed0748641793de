"""Stages 4b and 5a: query embedding, then the learned embedding adapter, both on the model backend."""

from __future__ import annotations

import numpy as np

from server.backends.base import EMBEDDING_DIM, ModelBackend, check_rows
from server.request import RequestContext


async def embed(backend: ModelBackend, text: str, ctx: RequestContext) -> np.ndarray:
    """The [384] L2-normalised base embedding of ``text``."""
    timeout_s = ctx.budget.timeout_for("embed")
    with ctx.timings.stage("embed"):
        vectors = await backend.embed([text], timeout_s=timeout_s)
    return check_rows("query embedder", vectors, 1, EMBEDDING_DIM)[0]


async def adapt(backend: ModelBackend, vector: np.ndarray, ctx: RequestContext) -> np.ndarray:
    """The adapted [384] query vector (documents stay in the base space; the adapter maps queries)."""
    timeout_s = ctx.budget.timeout_for("adapter")
    with ctx.timings.stage("adapter"):
        adapted = await backend.adapt(vector.reshape(1, -1), timeout_s=timeout_s)
    return check_rows("embedding adapter", adapted, 1, EMBEDDING_DIM)[0]
