"""In-memory stand-ins for the catalog store and the vector index, shared by the service tests.

The index embeds its chunks with :class:`server.backends.fake.FakeBackend`'s deterministic vectors, so
retrieval through the fake backend finds chunks that share words with the query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from server.backends.fake import FakeBackend
from server.retrieval.base import Chunk, Product, ScoredChunk
from server.retrieval.store import SeriesName

PRODUCTS = (
    Product(
        asin="B0CHAINSW1", title="Chainsaw Man, Vol. 1", series="Chainsaw Man", volume=1,
        author="Tatsuki Fujimoto", publisher="VIZ Media", format="tankobon", language="English",
        age_rating="Older Teen", genres=("action", "horror"), price=9.99, stock=14, release_date="2020-09-01",
    ),
    Product(
        asin="B0CHAINSW3", title="Chainsaw Man, Vol. 3", series="Chainsaw Man", volume=3,
        author="Tatsuki Fujimoto", publisher="VIZ Media", format="tankobon", language="English",
        age_rating="Older Teen", genres=("action", "horror"), price=11.49, stock=0, release_date="2021-01-05",
    ),
    Product(
        asin="B0FRIEREN1", title="Frieren: Beyond Journey's End, Vol. 1", series="Frieren", volume=1,
        author="Kanehito Yamada", publisher="VIZ Media", format="tankobon", language="English",
        age_rating="Teen", genres=("fantasy",), price=10.99, stock=3, release_date="2021-11-09",
    ),
)

#: the account that placed the fake catalog's order; any other customer (or none) cannot see it
CUSTOMER = "C-1001"
ORDERS = {
    "MA-20481937": {
        "order_id": "MA-20481937", "status": "shipped", "carrier": "UPS", "tracking_number": "1Z999AA10123456784",
        "items": ["B0CHAINSW1"], "placed_at": "2024-05-01", "eta": "2024-05-06", "customer_id": CUSTOMER,
    },
}

CHUNKS = (
    Chunk("p-B0CHAINSW1-0", "product-B0CHAINSW1", "product",
          "Chainsaw Man Vol. 1 by Tatsuki Fujimoto, tankobon, English. Denji becomes a devil hunter.", "B0CHAINSW1"),
    Chunk("p-B0FRIEREN1-0", "product-B0FRIEREN1", "product",
          "Frieren Beyond Journey's End Vol. 1, a fantasy about an elf mage after the hero's party.", "B0FRIEREN1"),
    Chunk("pol-returns-0", "policy-returns", "policy",
          "Returns: unopened manga can be returned within 30 days for a full refund. Damaged items are replaced free."),
    Chunk("pol-shipping-0", "policy-shipping", "policy",
          "Shipping: standard shipping is free on orders over $35 and takes 3 to 5 business days."),
    Chunk("r-B0CHAINSW1-0", "review-B0CHAINSW1", "review",
          "Readers love the chaotic action and dark humour of Chainsaw Man.", "B0CHAINSW1"),
)


class FakeCatalog:
    def __init__(self, products=PRODUCTS, orders=ORDERS) -> None:
        self.products = {p.asin: p for p in products}
        self.orders = dict(orders)
        self.closed = False

    def get_product(self, asin: str) -> Product | None:
        return self.products.get(asin)

    def price_of(self, asin: str) -> float | None:
        p = self.products.get(asin)
        return None if p is None else p.price

    def all_asins(self) -> frozenset[str]:
        return frozenset(self.products)

    def find_products(self, text: str, limit: int = 3) -> list[Product]:
        lowered = text.lower()
        volume = re.search(r"\bvol(?:ume)?\.?\s*(\d+)", lowered)
        hits = [p for p in self.products.values() if p.series.lower() in lowered]
        if volume:
            hits = [p for p in hits if p.volume == int(volume.group(1))] or hits
        return hits[:limit]

    def get_order(self, order_id: str, customer_id: str) -> dict[str, Any] | None:
        order = self.orders.get(order_id)
        return order if order is not None and customer_id and order["customer_id"] == customer_id else None

    # entity resolution (server/retrieval/entities.py): every fake series is carried, no aliases
    def series_names(self) -> list[SeriesName]:
        names = {p.series for p in self.products.values()}
        return [SeriesName(n, n, True, tuple(re.findall(r"[a-z]+|[0-9]+", n.lower()))) for n in sorted(names)]

    def series_products(self, series: str) -> list[Product]:
        return sorted((p for p in self.products.values() if p.series == series), key=lambda p: (p.volume or 0, p.asin))

    def script_mentions(self, text: str) -> list[SeriesName]:
        return []

    def products_by_genre(self, genres, limit: int, exclude_series: str | None = None) -> list[Product]:
        hits = [p for p in self.products.values() if set(genres) & set(p.genres) and p.series != exclude_series]
        return hits[:limit]

    def series_genres(self, series: str) -> tuple[str, ...]:
        return next((p.genres for p in self.products.values() if p.series == series), ())

    def search_policies(self, text: str, limit: int) -> list[Any]:
        return []  # policy sections come from the fake index's chunks (dense) only

    def close(self) -> None:
        self.closed = True


class FakeIndex:
    """Brute-force inner product over FakeBackend vectors (what FAISS IndexFlatIP would do)."""

    dim = 384

    def __init__(self, chunks=CHUNKS, backend: FakeBackend | None = None) -> None:
        vec = (backend or FakeBackend()).vector
        self.chunks = list(chunks)
        self.vectors = np.stack([vec(c.text) for c in self.chunks]) if self.chunks else np.zeros((0, 384), np.float32)
        self.searches = 0
        self.fail: Exception | None = None

    def add(self, chunks, vectors) -> None:
        self.chunks.extend(chunks)
        self.vectors = np.concatenate([self.vectors, vectors])

    def search(self, query: np.ndarray, k: int) -> list[ScoredChunk]:
        self.searches += 1
        if self.fail is not None:
            raise self.fail
        scores = self.vectors @ np.asarray(query, np.float32).reshape(-1)
        order = np.argsort(-scores)[:k]
        return [ScoredChunk(self.chunks[i], float(scores[i])) for i in order]

    def __len__(self) -> int:
        return len(self.chunks)


@dataclass(frozen=True)
class _Rule:
    intent: str
    rule: str
    order_id: str | None = None


def _contract_rules(text: str) -> _Rule | None:
    """Used only while server/stages/rules.py does not exist yet: the documented contract, minimally."""
    lowered = text.lower().strip()
    order = re.search(r"\bMA-\d{8}\b", text.upper())
    if order and re.search(r"\b(where|track|tracking|status|shipped|arrive|delivery)\b", lowered):
        return _Rule("order_status", "order_id_lookup", order.group(0))
    if re.search(r"\b(talk|speak)\s+to\s+(a\s+)?(human|person|agent|representative)\b", lowered):
        return _Rule("escalation", "human_handoff")
    if re.fullmatch(r"(hi|hello|hey|thanks|thank you|bye)[!. ]*", lowered):
        return _Rule("chitchat", "greeting")
    return None


def rule_matcher() -> Callable[[str], Any]:
    """The real rule fast path when it exists, else the contract stand-in above."""
    try:
        from server.stages.rules import match
    except ModuleNotFoundError:
        return _contract_rules
    return match
