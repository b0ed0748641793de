"""Multi-turn conversations for the follow-up evaluation (``mangaassist eval-conversations``).

Built deterministically from the catalog and orders, like the golden set: two- and three-turn conversations in
which the last turn only makes sense with the turns before it ("what about vol 4?", a bare order id after the bot
asked for one, "the second one you showed"). Each conversation names what its last turn must resolve to:

``{"id", "template", "split", "turns": [...], "expect": {"intent", "series", "volume", "asin", "format",
"order_id", "card_from": [turn, index], "must_state": [[alternatives]]}}``

``card_from`` means "the card the answer shows is the one the service showed at that index of that turn" (the
picks are the service's, so they cannot be known in advance). Phrasings come in variants with slang, fragments,
Japanese script and typos; ``split`` is ``dev`` or ``heldout`` by phrasing variant (every third variant held
out), so figures can be read on phrasings nobody looked at while writing the follow-up stage.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable

from model_repository.catalog_schema import guest_customer, order_customer
from model_repository.golden.generate import DEFAULT_SEED
from model_repository.golden.store import Store

#: (template id, follow-up phrasings); {n} = the volume asked next
_NEXT_VOLUME = ("what about vol {n}?", "and vol {n}", "{n}巻は？", "ok what about volume {n}", "vol {n}?",
                "and the next one?", "how about {n}", "next volume pls", "次の巻は？")
_THAT_ONE = ("is that one still in stock?", "is it in stock?", "that one in stock?", "is that one available rn",
             "それの在庫ある？", "do u have it", "still available?", "is this one in stock")
_EDITION = ("and the box set?", "box set?", "is there a box set", "what about the box set")
_LANGUAGE = ("in spanish?", "and in french?", "do you have it in german", "what about the italian edition")
_BARE_ORDER = ("{oid}", "it's {oid}", "order number is {oid}", "{oid} thanks", "here: {oid}", "{oid}です", "#{oid}")
_ORDER_ASK = ("where's my package??", "can you check my order status", "has my order shipped yet?",
              "my order hasn't arrived", "注文した本がまだ届きません", "where is my stuff")
_NTH = ("the second one you showed", "how much is the second one?", "tell me about the first one",
        "the last one you mentioned", "is the first one in stock?", "2nd one pls")
_RETURN = ("ok and how do I return it?", "how do i send it back", "can i return it if i don't like it?")
_OPENERS_PRICE = ("how much is {name} vol {v}?", "price of {name} volume {v}?", "{name} {v} how much", "{name}の{v}巻はいくら？")
_OPENERS_STOCK = ("is {name} vol {v} in stock?", "do you have {name} volume {v}?", "{name} {v} in stock?")
_RECOMMEND = ("can you recommend some {genre} manga?", "any good {genre} recs?", "suggest me a {genre} series")


def _split(variants: tuple[str, ...], i: int) -> str:
    return "heldout" if i % 3 == 2 else "dev"


def generate_conversations(data_dir: Path, seed: int = DEFAULT_SEED, per_template: int = 48) -> list[dict[str, Any]]:
    store = Store(Path(data_dir))
    rng = random.Random(f"{seed}:conversations")
    series = [s["series"] for s in store.carried_real if store.volume_count[s["series"]] >= 4]
    out: list[dict[str, Any]] = []

    def name(s: str) -> str:  # a customer's name for the series: its own, or an alias
        aliases = [a for a in store.series_by_name[s]["aliases"] if a and len(a) > 2]
        return rng.choice([s.lower(), s, *aliases[:2]])

    def add(template: str, variants: tuple[str, ...], make: Callable[[str], dict[str, Any] | None]) -> None:
        for k in range(per_template):
            i = k % len(variants)
            conv = make(variants[i])
            if conv is not None:
                out.append({"id": f"conv-{template}-{k:03d}", "template": template, "split": _split(variants, i), **conv})

    def next_volume(phrase: str) -> dict[str, Any] | None:
        s = rng.choice(series)
        vols = [p["volume"] for p in store.products_of(s)]
        v = rng.choice(vols[:-1])
        target = store.product(s, v + 1)
        if target is None:
            return None
        opener = rng.choice(_OPENERS_PRICE).format(name=name(s), v=v)
        return {"turns": [opener, phrase.format(n=v + 1)],
                "expect": {"intent": ["price_deal", "product_question"], "series": s, "volume": v + 1, "asin": target["asin"]}}

    def three_turns(phrase: str) -> dict[str, Any] | None:
        s = rng.choice(series)
        vols = [p["volume"] for p in store.products_of(s)]
        if len(vols) < 4:
            return None
        v = rng.choice(vols[:-2])
        target = store.product(s, v + 2)
        if target is None:
            return None
        return {"turns": [rng.choice(_OPENERS_PRICE).format(name=name(s), v=v), f"what about vol {v + 1}?",
                          phrase.format(n=v + 2)],
                "expect": {"intent": ["price_deal", "product_question"], "series": s, "volume": v + 2, "asin": target["asin"]}}

    def that_one(phrase: str) -> dict[str, Any] | None:
        s = rng.choice(series)
        p = rng.choice(store.products_of(s))
        opener = rng.choice(_OPENERS_PRICE).format(name=name(s), v=p["volume"])
        return {"turns": [opener, phrase],
                "expect": {"intent": ["product_question", "price_deal"], "series": s, "volume": p["volume"], "asin": p["asin"],
                           "must_state": [["in stock", "out of stock", "available"]]}}

    def box_set(phrase: str) -> dict[str, Any] | None:
        s = rng.choice([x for x in series if store.product(x, None, "box_set") is not None] or series)
        box = store.product(s, None, "box_set")
        if box is None:
            return None
        v = store.products_of(s)[0]["volume"]
        return {"turns": [rng.choice(_OPENERS_STOCK).format(name=name(s), v=v), phrase],
                "expect": {"intent": ["product_question", "price_deal"], "series": s, "format": "box_set", "asin": box["asin"]}}

    def language(phrase: str) -> dict[str, Any] | None:
        lang = next(l for l in ("Spanish", "French", "German", "Italian") if l.lower() in phrase.lower())
        candidates = [p for p in store.products if p["language"] == lang and p["format"] == "tankobon" and p["series"] in series]
        if not candidates:
            return None
        p = rng.choice(candidates)
        return {"turns": [rng.choice(_OPENERS_STOCK).format(name=name(p["series"]), v=p["volume"]), phrase],
                "expect": {"intent": ["product_question", "price_deal"], "series": p["series"], "volume": p["volume"], "asin": p["asin"]}}

    def bare_order(phrase: str) -> dict[str, Any] | None:
        o = rng.choice([o for o in store.orders if o["status"] in ("shipped", "out_for_delivery", "processing", "delivered")])
        return {"turns": [rng.choice(_ORDER_ASK), phrase.format(oid=o["order_id"])],
                "expect": {"intent": ["order_status"], "order_id": o["order_id"]}, "customer_id": order_customer(o)}

    def nth(phrase: str) -> dict[str, Any] | None:
        genre = rng.choice(["horror", "romance", "sports", "fantasy", "mystery", "comedy", "isekai", "historical"])
        index = 1 if ("second" in phrase or "2nd" in phrase) else (-1 if "last" in phrase else 0)
        return {"turns": [rng.choice(_RECOMMEND).format(genre=genre), phrase],
                "expect": {"intent": ["product_question", "price_deal"], "card_from": [0, index]}}

    def return_it(phrase: str) -> dict[str, Any] | None:
        s = rng.choice(series)
        p = rng.choice(store.products_of(s))
        return {"turns": [rng.choice(_OPENERS_STOCK).format(name=name(s), v=p["volume"]), phrase],
                "expect": {"intent": ["return_refund"], "must_state": [["30 days"]]}}

    add("next_volume", _NEXT_VOLUME, next_volume)
    add("three_turns", ("and the one after?", "what about vol {n}", "{n}巻も", "ok and {n}?"), three_turns)
    add("that_one", _THAT_ONE, that_one)
    add("box_set", _EDITION, box_set)
    add("language", _LANGUAGE, language)
    add("bare_order_id", _BARE_ORDER, bare_order)
    add("nth_pick", _NTH, nth)
    add("return_it", _RETURN, return_it)
    return out


def write_conversations(data_dir: Path, out_path: Path, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    rows = [{"customer_id": guest_customer(r["id"]), **r} for r in generate_conversations(data_dir, seed)]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return {"conversations": len(rows), "path": str(out_path)}
