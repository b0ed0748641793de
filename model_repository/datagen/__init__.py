"""Deterministic generated data for training and evaluating MangaAssist's models.

``generate_all(out_dir, seed)`` writes every file listed under "Data record formats" in the shared
contracts: the catalog, policies, orders, retrievable documents, intent splits and retrieval triples.
Everything is a pure function of ``seed`` (one ``random.Random`` per concern, never the global generator,
no wall clock), and every file is sorted, so the same seed gives byte-identical output.
"""

from __future__ import annotations

import json
import pathlib
import random
from typing import Any, Iterable

from model_repository.datagen.catalog import generate_catalog, series_records
from model_repository.datagen.documents import generate_documents
from model_repository.datagen.intents import SPLITS, generate_intents
from model_repository.datagen.orders import generate_orders
from model_repository.datagen.policies import generate_policies
from model_repository.datagen.triples import generate_triples

DEFAULT_SEED = 1234

__all__ = ["DEFAULT_SEED", "generate_all", "read_jsonl", "write_jsonl"]


def write_jsonl(path: pathlib.Path, records: Iterable[dict[str, Any]]) -> pathlib.Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def read_jsonl(path: pathlib.Path) -> list[dict[str, Any]]:
    with pathlib.Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def generate_all(out_dir: pathlib.Path, seed: int = DEFAULT_SEED) -> dict[str, pathlib.Path]:
    """Write all generated data under ``out_dir``; returns name -> path (e.g. ``"intents/train"``)."""
    out_dir = pathlib.Path(out_dir)
    products, series = generate_catalog(random.Random(f"{seed}:catalog"))
    policies = generate_policies()
    orders = generate_orders(random.Random(f"{seed}:orders"), [p["asin"] for p in products])
    documents = generate_documents(products, policies)
    intents = generate_intents(seed, series, [o["order_id"] for o in orders])
    triples = generate_triples(seed, products, [p["policy_id"] for p in policies])

    paths = {
        "catalog": write_jsonl(out_dir / "catalog.jsonl", products),
        "policies": write_jsonl(out_dir / "policies.jsonl", policies),
        "orders": write_jsonl(out_dir / "orders.jsonl", orders),
        "documents": write_jsonl(out_dir / "documents.jsonl", documents),
        "series": write_jsonl(out_dir / "series.jsonl", series_records(series)),
    }
    for split in SPLITS:
        paths[f"intents/{split}"] = write_jsonl(out_dir / "intents" / f"{split}.jsonl", intents[split])
    for split in ("train", "test"):
        paths[f"triples/{split}"] = write_jsonl(out_dir / "triples" / f"{split}.jsonl", triples[split])
    return paths
