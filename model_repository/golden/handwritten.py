"""Writes the hand-written part: ``handwritten.jsonl`` (and the development split) resolved against the data.

Entities are named by reference (series + volume + format + language, a policy aspect, an order placeholder) and
filled from the data files, so the records stay true for any seed.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from model_repository.golden.phrasing import normalise
from model_repository.golden.policy_aspects import ASPECTS
from model_repository.golden.record import PRODUCT_FACTS, SERIES_FACTS, GoldenRecord
from model_repository.golden.store import Store, read_jsonl

HANDWRITTEN = Path(__file__).with_name("handwritten.jsonl")
#: Hand-written after the answer stage was tuned on the golden set -- then used to tune it and the fact checker, so it
#: is a *development* split now (``.build/golden/holdout.jsonl``, ids ``ho-``), not a held-out one. The held-out set
#: is tests/fixtures/golden_heldout/heldout.jsonl (ids ``hx-``), frozen by sha256 and never used to tune.
HOLDOUT = Path(__file__).with_name("holdout.jsonl")
#: ``{order:<status>}``, ``{order:<status>:<mode>}`` or ``{order:unknown}`` in a hand-written message
ORDER_PLACEHOLDER = re.compile(r"\{order:(\w+)(?::(\w+))?\}")


def handwritten_records(
    store: Store, seed: int, seen: set[str], path: Path = HANDWRITTEN, source: str = "handwritten"
) -> list[dict[str, Any]]:
    """Resolve ``handwritten.jsonl`` against the data. A record whose product does not exist in this catalog
    (editions are drawn per seed) or whose message collides with a training message is dropped."""
    out = []
    used_orders: set[str] = set()
    for raw in read_jsonl(path):
        rec = resolve_handwritten(store, seed, raw, used_orders, source)
        if rec is None:
            continue
        key = normalise(rec["message"])
        if key in seen or key in store.training:
            continue
        seen.add(key)
        out.append(rec)
    return out


def resolve_handwritten(
    store: Store, seed: int, raw: dict[str, Any], used_orders: set[str], source: str = "handwritten"
) -> dict[str, Any] | None:
    """One ``handwritten.jsonl`` line -> a contract record.

    Input fields: ``id message intent complexity edge`` as in the contract, plus
    ``entity`` ``{series, volume, format, language, policy: "<policy_id>#<aspect>", genre}``,
    ``facts`` (``stock price release_date age_rating author publisher volumes``), ``expect`` (partial),
    ``pii`` (raw PII strings of the message), ``other_order`` (asks for other customers' orders),
    extra ``must_state`` / ``must_not_state`` and an optional ``reference`` (placed before the facts).
    Order placeholders in the message: ``{order:<status>}`` (a real order of that status: its status facts
    when the intent is ``order_status``, else just named), ``{order:<status>:facts}``, ``{order:<status>:ref}``,
    ``{order:<status>:other}`` (someone else's order: nothing of it may be revealed) and ``{order:unknown}``."""
    rng = random.Random(f"{seed}:golden:hw:{raw['id']}")
    ent = raw.get("entity", {})
    orders: dict[str, dict[str, Any]] = {}

    def order_for(m: re.Match[str]) -> str:
        status, label = m.group(1), m.group(0)
        if label in orders:
            return orders[label]["order_id"]
        if status == "unknown":
            orders[label] = {"order_id": store.unknown_order_id(rng), "mode": "unknown"}
            return orders[label]["order_id"]
        pool = [o for o in store.orders_by_status[status] if o["order_id"] not in used_orders] or store.orders_by_status[status]
        o = rng.choice(pool)
        used_orders.add(o["order_id"])
        mode = m.group(2) or ("facts" if raw["intent"] == "order_status" else "ref")
        orders[label] = {**o, "mode": mode}
        return o["order_id"]

    message = ORDER_PLACEHOLDER.sub(order_for, raw["message"])
    r = GoldenRecord(store, message, raw["intent"], raw.get("complexity", "simple"), list(raw.get("edge", [])))
    r.answered_intents.update(raw.get("also_intents", []))
    series = ent.get("series")
    facts = raw.get("facts", [])
    if series is not None:
        srec = store.series_by_name.get(series)
        if srec is None:
            raise ValueError(f"{raw['id']}: unknown series {series!r}")
        if not srec["carried"]:
            r.not_carried(series, decline=raw.get("expect", {}).get("decline", True))
        elif ent.get("volume") is not None or ent.get("format") or any(f in PRODUCT_FACTS for f in facts):
            p = store.product(series, ent.get("volume", 1), ent.get("format") or "tankobon", ent.get("language") or "English")
            if p is None:
                return None
            r.product(p, facts)
        else:
            r.entity.update(series=series, carried=True)
        if srec["carried"] and any(f in SERIES_FACTS for f in facts):
            r.series_facts(series, [f for f in facts if f in SERIES_FACTS])
    keys = ent.get("policy") or []
    for key in [keys] if isinstance(keys, str) else keys:
        if key not in ASPECTS:
            raise ValueError(f"{raw['id']}: unknown policy aspect {key!r}")
        r.policy(key)
    for o in orders.values():
        {"unknown": lambda o: r.unknown_order(), "other": r.others_order, "facts": r.order, "ref": r.names_order}[o["mode"]](o)
    if raw.get("other_order") and not orders:
        r.others_order(None)
    exp = raw.get("expect", {})
    if exp.get("ask_order_id"):
        r.asks_order_id()
    if exp.get("escalate", raw["intent"] == "escalation"):
        r.escalate()
    if exp.get("blocked"):
        r.block()
    if exp.get("redact"):
        r.redact(exp["redact"], raw.get("pii", []))
    if ent.get("genre"):
        r.recommend(rng, ent["genre"], series)
    fill = lambda text: ORDER_PLACEHOLDER.sub(lambda m: orders[m.group(0)]["order_id"], text)  # noqa: E731
    r.must_state.extend([fill(a) for a in group] for group in raw.get("must_state", []))
    r.must_not_state.extend(fill(t) for t in raw.get("must_not_state", []))
    if raw.get("reference") and not r.expect["blocked"]:
        r.reference.insert(0, fill(raw["reference"]))
    if not r.reference:
        raise ValueError(f"{raw['id']}: no reference (add 'reference' or facts)")
    return r.to_contract(raw["id"], source)
