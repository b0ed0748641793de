"""Composes the golden set: every intent's record writers, then the hand-written part -> golden.jsonl, holdout.jsonl.

The record contract is the package docstring's. Everything is deterministic: one
``random.Random(f"{seed}:golden:<intent>:<writer name>")`` per writer, data files read in their (sorted) order, and
the output ordered by id. Facts always come from the data files: a record names its product / policy aspect /
order and :class:`GoldenRecord` turns that into ``must_state`` groups and a reference answer.

Where things are (all in ``model_repository/golden/``):

* one module per intent, each a list ``WRITERS`` of (name, writer, how many records) and the phrasings they draw
  from: ``product_question``, ``recommendation``, ``order_status``, ``return_refund``, ``policy_faq``,
  ``price_deal``, ``chitchat``, ``escalation``;
* ``record`` (:class:`GoldenRecord` and the contract's vocabulary), ``store`` (the data files, indexed),
  ``policy_aspects`` (the policy points asked about), ``phrasing`` (customers' names, aliases, typos),
  ``writers`` (:class:`Draws`, the seeded choices, and writers several intents share);
* ``handwritten`` (the hand-written part) and this module (the composition and the entry points).
"""

from __future__ import annotations

import collections
import json
import random
from pathlib import Path
from typing import Any, Sequence

from model_repository.golden import (
    chitchat, escalation, order_status, policy_faq, price_deal, product_question, recommendation, return_refund,
)
from model_repository.golden.handwritten import HANDWRITTEN, HOLDOUT, handwritten_records
from model_repository.golden.phrasing import has_japanese, normalise
from model_repository.golden.policy_aspects import ASPECTS
from model_repository.golden.record import (
    ASK_ORDER, COMPLEXITIES, DECLINE, EDGE_TAGS, ESCALATE, LEAK, NOT_FOUND, PII_KINDS, STATUS_WORDS,
)
from model_repository.golden.store import Store
from model_repository.golden.writers import Draws, Writer
from server.intents import INTENT_LABELS

DEFAULT_SEED = 1234

#: intent -> [(writer name, writer, how many records)]; ~400 generated records in all.
PLAN: dict[str, list[tuple[str, Writer, int]]] = {
    "product_question": product_question.WRITERS,
    "recommendation": recommendation.WRITERS,
    "order_status": order_status.WRITERS,
    "return_refund": return_refund.WRITERS,
    "policy_faq": policy_faq.WRITERS,
    "price_deal": price_deal.WRITERS,
    "chitchat": chitchat.WRITERS,
    "escalation": escalation.WRITERS,
}


def generated_records(store: Store, seed: int, seen: set[str]) -> list[dict[str, Any]]:
    """The generated part: every intent's writers in plan order, a message new to ``seen`` and to the intent
    training splits per record (a collision is drawn again, up to 40 draws a record)."""
    out: list[dict[str, Any]] = []
    for intent in INTENT_LABELS:
        n = 0
        for name, writer, count in PLAN[intent]:
            draw = Draws(store, random.Random(f"{seed}:golden:{intent}:{name}"))
            made, attempts = 0, 0
            while made < count and attempts < count * 40:
                attempts += 1
                r = writer(draw)
                if r is None:
                    continue
                key, untyped = normalise(r.message), normalise(r.untyped_message or r.message)
                if not key or key in seen or key in store.training or untyped in seen:
                    continue
                seen.update((key, untyped))
                made += 1
                n += 1
                out.append(r.to_contract(f"gen-{intent}-{n:04d}", "generated"))
    return out


# ------------------------------------------------------------------------------------------------ entry points
def generate_golden(data_dir: Path, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """The golden set for the data in ``data_dir``: generated records, then hand-written ones."""
    return golden_and_holdout(data_dir, seed)[0]


def golden_and_holdout(data_dir: Path, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The golden set (generated + hand-written records) and the development split (``holdout.jsonl``)."""
    store = Store(Path(data_dir))
    seen: set[str] = set()
    hand = handwritten_records(store, seed, seen)  # hand-written first: they win a collision with a generated message
    golden = generated_records(store, seed, seen) + hand
    return golden, handwritten_records(store, seed, seen, HOLDOUT, "holdout")  # no message of the golden set


def counts(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Records per intent, edge tag, complexity and source."""
    by = lambda key: dict(sorted(collections.Counter(key(r) for r in records).items()))  # noqa: E731
    return {
        "intent": {i: sum(r["intent"] == i for r in records) for i in INTENT_LABELS},
        "edge": {t: sum(t in r["edge"] for r in records) for t in EDGE_TAGS},
        "complexity": {c: sum(r["complexity"] == c for r in records) for c in COMPLEXITIES},
        "source": by(lambda r: r["source"]),
    }


def write_golden(data_dir: Path, out_path: Path, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Write ``golden.jsonl`` (one record per line, UTF-8, sorted as generated) and, next to it, the held-out
    ``holdout.jsonl``; returns the golden set's counts."""
    records, holdout = golden_and_holdout(data_dir, seed)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for path, rows in ((out_path, records), (out_path.with_name("holdout.jsonl"), holdout)):
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="\n") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        tmp.replace(path)
    return {"records": len(records), "holdout": len(holdout), "path": str(out_path), **counts(records)}


__all__ = [
    "ASK_ORDER", "ASPECTS", "DECLINE", "DEFAULT_SEED", "EDGE_TAGS", "ESCALATE", "HANDWRITTEN", "HOLDOUT", "LEAK",
    "NOT_FOUND", "PII_KINDS", "PLAN", "STATUS_WORDS", "Store", "counts", "generate_golden", "generated_records",
    "golden_and_holdout", "has_japanese", "normalise", "write_golden",
]
