"""The catalog view the guardrails need: does an ASIN exist, what is its product and price.

The production source of truth is the CatalogStore (``server/retrieval/store.py``); anything with
``get_product(asin)`` (returning a :class:`Product` or ``None``, or raising ``KeyError``) works, and
``price_of(asin)`` / ``all_asins()`` are used when present. :class:`InMemoryCatalog` serves tests, the
fixture evaluation and reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Protocol

from server.retrieval.base import Product


class CatalogLike(Protocol):
    def get_product(self, asin: str) -> Product | None: ...


class CatalogView:
    """Uniform, exception-free access to whatever catalog object the service was given."""

    def __init__(self, catalog: CatalogLike) -> None:
        self._catalog = catalog

    def product(self, asin: str) -> Product | None:
        try:
            return self._catalog.get_product(asin)
        except (KeyError, LookupError):
            return None

    def exists(self, asin: str) -> bool:
        return self.product(asin) is not None

    def price(self, asin: str) -> float | None:
        price_of = getattr(self._catalog, "price_of", None)
        if price_of is not None:
            try:
                value = price_of(asin)
            except (KeyError, LookupError):
                return None
            return None if value is None else float(value)
        product = self.product(asin)
        return None if product is None else float(product.price)


def product_from_record(rec: dict) -> Product:
    return Product(
        asin=rec["asin"],
        title=rec.get("title", ""),
        series=rec.get("series", ""),
        volume=rec.get("volume"),
        author=rec.get("author", ""),
        publisher=rec.get("publisher", ""),
        format=rec.get("format", "tankobon"),
        language=rec.get("language", "English"),
        age_rating=rec.get("age_rating", ""),
        genres=tuple(rec.get("genres", ())),
        price=float(rec.get("price", 0.0)),
        stock=int(rec.get("stock", 0)),
        release_date=rec.get("release_date", ""),
    )


class InMemoryCatalog:
    def __init__(self, products: Iterable[Product]) -> None:
        self._by_asin = {p.asin: p for p in products}

    @classmethod
    def from_jsonl(cls, path: str | Path) -> "InMemoryCatalog":
        with open(path, encoding="utf-8") as fh:
            return cls(product_from_record(json.loads(line)) for line in fh if line.strip())

    def all_asins(self) -> frozenset[str]:
        return frozenset(self._by_asin)

    def get_product(self, asin: str) -> Product | None:
        return self._by_asin.get(asin)

    def price_of(self, asin: str) -> float | None:
        p = self._by_asin.get(asin)
        return None if p is None else p.price
