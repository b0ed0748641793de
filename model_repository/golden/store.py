"""Reads the store's data files (catalog, series, policies, orders, intent splits) into one indexed Store."""

from __future__ import annotations

import collections
import json
import random
from pathlib import Path
from typing import Any

from model_repository.golden.phrasing import normalise


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class Store:
    """The data files a golden set is built from, indexed."""

    def __init__(self, data_dir: Path) -> None:
        d = Path(data_dir)
        self.products = read_jsonl(d / "catalog.jsonl")
        self.by_asin = {p["asin"]: p for p in self.products}
        self.by_key = {(p["series"], p["format"], p["language"], p["volume"]): p for p in self.products}
        self.series = read_jsonl(d / "series.jsonl")
        self.series_by_name = {s["series"]: s for s in self.series}
        self.carried_real = [s for s in self.series if s["carried"] and s["real"]]
        self.fictional = [s for s in self.series if s["carried"] and not s["real"]]
        self.not_carried = [s for s in self.series if not s["carried"]]
        self.volume_count = collections.Counter(
            p["series"] for p in self.products if p["format"] == "tankobon" and p["language"] == "English")
        self.policies = {p["policy_id"]: p for p in read_jsonl(d / "policies.jsonl")}
        self.orders = read_jsonl(d / "orders.jsonl")
        self.order_by_id = {o["order_id"]: o for o in self.orders}
        self.orders_by_status: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for o in self.orders:
            self.orders_by_status[o["status"]].append(o)
        self.genres = sorted({g for p in self.products for g in p["genres"]})
        self.training: set[str] = set()
        for split in ("train", "validation", "test"):
            path = d / "intents" / f"{split}.jsonl"
            if path.exists():
                self.training.update(normalise(r["text"]) for r in read_jsonl(path))

    # products ---------------------------------------------------------------------------------------
    def product(self, series: str, volume: int | None = 1, fmt: str = "tankobon", language: str = "English") -> dict | None:
        return self.by_key.get((series, fmt, language, None if fmt == "box_set" else volume))

    def products_of(self, series: str, fmt: str = "tankobon", language: str = "English") -> list[dict[str, Any]]:
        return sorted((p for p in self.products if p["series"] == series and p["format"] == fmt and p["language"] == language),
                      key=lambda p: (p["volume"] or 0))

    def series_fact(self, series: str, fact: str) -> str:
        first = self.products_of(series)[0]
        if fact == "volumes":
            return str(self.volume_count[series])
        return first[fact]

    def unknown_order_id(self, rng: random.Random) -> str:
        while True:
            oid = f"MA-{rng.randrange(10_000_000, 100_000_000)}"
            if oid not in self.order_by_id:
                return oid
