"""Stage 5b: nearest-neighbour search over the chunk index, and catalog lookups for cards and facts.

The index (FAISS in-process, or a Milvus client) and the catalog (SQLite) are synchronous libraries; their
calls run in a worker thread so the event loop keeps serving other requests. Failures at this boundary
(third-party exceptions of every kind) become :class:`BackendError` so the pipeline can degrade.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Iterable, Protocol, Sequence

import numpy as np

from server.errors import BackendError, BackendTimeout
from server.request import RequestContext
from server.retrieval.base import Product, ScoredChunk, VectorIndex

log = logging.getLogger(__name__)


class Catalog(Protocol):
    """What the pipeline needs from ``server.retrieval.store.CatalogStore``."""

    def get_product(self, asin: str) -> Product | None: ...

    def find_products(self, text: str, limit: int) -> list[Product]: ...

    def get_order(self, order_id: str, customer_id: str) -> dict[str, Any] | None: ...


async def search(index: VectorIndex, vector: np.ndarray, k: int, ctx: RequestContext) -> list[ScoredChunk]:
    timeout_s = ctx.budget.timeout_for("retrieve")
    with ctx.timings.stage("retrieve"):
        return await _in_thread("vector_index", timeout_s, index.search, np.asarray(vector, np.float32), k)


async def products_for(
    catalog: Catalog, text: str, chunks: Sequence[ScoredChunk], limit: int, ctx: RequestContext
) -> list[Product]:
    """Products the message mentions (title/series), then those behind the retrieved chunks; unique, ``limit``."""
    with ctx.timings.stage("catalog"):
        return await asyncio.to_thread(_products_for, catalog, text, [c.chunk.asin for c in chunks], limit)


async def resolve(catalog: Catalog, asins: Iterable[str], ctx: RequestContext) -> list[Product]:
    """Catalog rows for ``asins`` in order; unknown ones are dropped (the catalog is the source of truth)."""
    asins = list(dict.fromkeys(asins))
    if not asins:
        return []
    with ctx.timings.stage("catalog"):
        found = await asyncio.to_thread(lambda: [catalog.get_product(a) for a in asins])
    return [p for p in found if p is not None]


def _products_for(catalog: Catalog, text: str, asins: list[str | None], limit: int) -> list[Product]:
    out: dict[str, Product] = {}
    for product in catalog.find_products(text, limit):
        out.setdefault(product.asin, product)
    for asin in asins:
        if len(out) >= limit:
            break
        if asin and asin not in out:
            product = catalog.get_product(asin)
            if product is not None:
                out[asin] = product
    return list(out.values())[:limit]


async def _in_thread(name: str, timeout_s: float, fn: Any, *args: Any) -> Any:
    try:
        return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout=timeout_s)
    except asyncio.TimeoutError:
        raise BackendTimeout(f"{name} took longer than {timeout_s * 1000:.0f} ms", model=name) from None
    except (ValueError, TypeError):  # our arguments were wrong: that is a bug, not an outage
        raise
    except Exception as err:  # noqa: BLE001 -- boundary to FAISS / pymilvus: any failure degrades retrieval
        log.warning("%s failed: %r", name, err)
        raise BackendError(f"{name} failed: {type(err).__name__}", model=name) from err
