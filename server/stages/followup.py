"""Stage 2b: a follow-up resolved from the session's recent turns (server/sessions).

Customers answer the bot and refer back: a bare "MA-12345678" after the bot asked for an order number, "what
about vol 4?", "and the box set?", "is that one still in stock", "the second one you showed", "ok and how do I
return it". Each later stage (rules, classifier, retrieval query, facts, answer) reads one text, so the follow-up
is resolved *into the text*: the reference is replaced by what it points at, taken from the last turn
("what about vol 4?" after a price question about Naruto vol 3 -> "how much is Naruto vol 4?"). A message that
names its own title, or a session with no turns, stands as it is.

Precision over coverage: a wrong resolution answers about the wrong book, so only the patterns below resolve,
and only against the turn right before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from server.ids import ORDER_ID_LOOSE, find_order_ids
from server.retrieval import asks
from server.retrieval.entities import EntityResolver, requested_format, requested_language
from server.sessions.store import Turn


@dataclass(frozen=True)
class Followup:
    text: str  # what the later stages read
    kind: str = ""  # "" (stands alone) | "order_id" | "volume" | "edition" | "product"
    refers_to: str = ""  # the order id / title / "<series> vol N" it resolved to


#: The whole message is an order id, give or take "it's", "order", "here", "thanks".
_BARE_ORDER_ID = re.compile(
    r"^\W*(?:(?:it'?s|its|here(?:'s| you go| it is)?|sure|ok(?:ay)?|yes|yeah|my order(?: number)?(?: is)?|"
    r"order(?: number| no\.?| #)?(?: is)?|the number is|number)\W*)*(?:#\s*)?" + ORDER_ID_LOOSE
    + r"\W*(?:thanks?|thank you|ty|please|pls)?\W*$|^\W*(?:注文番号は?)?\s*" + ORDER_ID_LOOSE + r"\s*(?:です)?\W*$",
    re.I,
)
#: "vol 4", "volume 4", "#4", "4巻", "book 4", a bare number ("what about 5?"), "the next one", "next volume", 次の巻
_VOLUME_REF = re.compile(
    r"(?P<explicit>\b(?:vol(?:ume)?\.?|book|#)\s*(?P<n1>\d{1,3})\b|(?P<n2>\d{1,3})\s*巻)"
    r"|(?P<next>\b(?:the )?next (?:one|volume|vol|book)\b|\bthe one after\b|次の巻|続き)"
    r"|(?P<bare>^(?:\W*(?:and|what about|how about|ok|also)\s+)*(?P<n3>\d{1,3})\s*\??\s*$)",
    re.I,
)
#: "that one", "this one", "it", "the second one (you showed)", それ
_PRODUCT_REF = re.compile(
    r"\b(?:the )?(?P<ord>first|second|third|last|1st|2nd|3rd) (?:one|book|pick|volume)(?: you (?:showed|mentioned|listed|suggested|said))?\b"
    r"|\b(?:that|this) (?:one|book|volume|manga)\b|\bit\b|それ|その本|あれ",
    re.I,
)
#: "and", "what about", "the", "ok" in front of a bare edition ask ("and the box set?")
_LEAD = re.compile(r"^(?:(?:and|what about|how about|ok(?:ay)?|also|so|the|a|an|is there an?)\s+)+", re.I)
#: A bare ask about an item ("still available?", "in stock?", "how much?", "price?")
_ITEM_ASK = re.compile(r"\bstill (?:available|in stock|there)\b|^\W*(?:is it |and )?(?:in stock|available|how much|price|cost)\W*$|在庫", re.I)
_ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "last": -1}
#: Words that already ask something; without them a resolved reference is asked the way the last turn asked.
_ASKS_SOMETHING = re.compile(
    r"how much|price|cost|in stock|stock|available|availability|have|carry|sell|release|out yet|author|who|"
    r"return|refund|exchange|swap|ship|deliver|\bsend\b|\bhow (?:do|can|long|would)\b|いくら|在庫|ある|発売|返品",
    re.I,
)


def resolve(text: str, history: Sequence[Turn], resolver: EntityResolver) -> Followup:
    """The message with what it refers to in the last turn spelled out (or as it is)."""
    if not history:
        return Followup(text)
    last = history[-1]
    ids = find_order_ids(text)
    if ids and _BARE_ORDER_ID.match(text.strip()) and (last.asked_order_id or last.intent in ("order_status", "return_refund")):
        base = last.resolved or last.message
        return Followup(f"{base} {ids[0]}", "order_id", ids[0])
    res = resolver.resolve(text)
    if res.matched_by in ("name", "fuzzy") or res.not_ours or ids:
        return Followup(text)  # it names its own title / order: it stands alone
    if last.series:
        volume = _volume_ref(text, last)
        if volume is not None:
            n, span = volume
            target = f"{last.series} vol {n}"
            return Followup(_asked(text[: span[0]] + target + text[span[1]:], last, target), "volume", target)
        if _short(text) and (requested_format(text) or requested_language(text)):
            vol = f" vol {last.volume}" if last.volume is not None and requested_format(text) != "box_set" else ""
            edition = _LEAD.sub("", text.strip()).rstrip(" ?？。.!")
            target = f"{last.series}{vol} {edition}"
            return Followup(_asked(target, last, target), "edition", target)
    if last.asins:
        m = _PRODUCT_REF.search(text)
        if m:
            index = _ORDINALS.get((m.group("ord") or "").lower(), 0)
            asin = last.asins[index] if -len(last.asins) <= index < len(last.asins) else None
            product = resolver.catalog.get_product(asin) if asin else None
            if product is not None:
                resolved = text[: m.start()] + product.title + text[m.end():]
                return Followup(_asked(resolved, last, product.title), "product", product.title)
        if _short(text) and _ITEM_ASK.search(text) and not asks.ORDER_WORDS.search(text):
            # "still available?", "how much?": the product the last answer was about
            product = resolver.catalog.get_product(last.asins[0])
            if product is not None:
                ask = f"how much is {product.title}?" if asks.PRICE_ASKED.search(text) else f"is {product.title} in stock?"
                return Followup(ask, "product", product.title)
    return Followup(text)


def _volume_ref(text: str, last: Turn) -> tuple[int, tuple[int, int]] | None:
    m = _VOLUME_REF.search(text)
    if m is None:
        return None
    if m.group("next"):
        if last.volume is None:
            return None
        return last.volume + 1, m.span()
    n = m.group("n1") or m.group("n2") or m.group("n3")
    span = m.span("bare") if m.group("bare") else m.span()
    if m.group("bare"):
        span = m.span("n3")
    return int(n), span


def _short(text: str) -> bool:
    return len(text.split()) <= 7


def _asked(text: str, last: Turn, target: str) -> str:
    """``text``, or -- when it asks nothing itself ("yes that one", "what about Naruto vol 4") -- ``target``
    asked the way the last turn asked."""
    if _ASKS_SOMETHING.search(text) and not re.fullmatch(r"\W*(?:what|how) about\b.*", text.strip(), re.I):
        return text
    before = last.resolved or last.message
    if asks.PRICE_ASKED.search(before):
        return f"how much is {target}?"
    if re.search(r"stock|available|have|carry|在庫|ある", before, re.I):
        return f"is {target} in stock?"
    return f"tell me about {target}"
