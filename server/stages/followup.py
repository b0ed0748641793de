"""Stage 2c: a follow-up resolved from the session's recent turns (server/sessions).

Customers answer the bot and refer back: a bare "MA-12345678" after the bot asked for an order number, "what
about vol 4?", "and the box set?", "is that one still in stock", "the second one you showed", "ok and how do I
return it". Each later stage (rules, classifier, retrieval query, facts, answer) reads one text, so the follow-up
is resolved *into the text*: the reference is replaced by what it points at, taken from the last turn
("what about vol 4?" after a price question about Naruto vol 3 -> "how much is Naruto vol 4?"). A message that
names its own title, or a session with no turns, stands as it is.

Conversation state, not phrase lists (issue 23.2): the session's recent turns give a small state (the item in
play -- series, volume, products shown, author --, the order id, the attribute asked; server/sessions/state.py),
and a learned classifier (server/stages/relation.py: char + word n-gram logistic regression trained on generated
messages, plus slot extraction) says how the message relates to it: the same item ("is that one still in stock",
"the second one you showed"), another volume ("can I get the fifth one instead", "the one before that"), an
attribute of it ("who's the mangaka on that?", "how thick is it?"), more by its author ("anything else by her?"),
the order given earlier ("so when will it get here?") or a new topic. The slot is taken from the newest turn that
holds it, so a small-talk turn in between does not lose it. Precision over coverage still: a message naming its
own title or order stands alone, and a relation the classifier is unsure of (< ``relation.MIN_PROBABILITY``) or
whose slot the state lacks resolves nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Sequence

from server.ids import ORDER_ID_LOOSE, find_order_ids
from server.retrieval import asks
from server.retrieval.entities import EntityResolver, requested_format, requested_language
from server.sessions.state import ConversationState, state_of
from server.sessions.store import Turn
from server.stages import relation as relation_model


@dataclass(frozen=True)
class Followup:
    text: str  # what the later stages read
    kind: str = ""  # "" (stands alone) | "order_id" | "volume" | "edition" | "product" | "attribute" | "author" | "order"
    refers_to: str = ""  # the order id / title / "<series> vol N" / author it resolved to
    relation: str = ""  # the classifier's relation ("" = not asked: no history, or the message named its own title)
    attribute: str | None = None  # the attribute asked ("author", "pages", ...)
    author: str | None = None  # the author of the item in play


#: The whole message is an order id, give or take "it's", "order", "here", "thanks".
_BARE_ORDER_ID = re.compile(
    r"^\W*(?:(?:it'?s|its|here(?:'s| you go| it is)?|sure|ok(?:ay)?|yes|yeah|my order(?: number)?(?: is)?|"
    r"order(?: number| no\.?| #)?(?: is)?|the number is|number)\W*)*(?:#\s*)?" + ORDER_ID_LOOSE
    + r"\W*(?:thanks?|thank you|ty|please|pls)?\W*$|^\W*(?:注文番号は?)?\s*" + ORDER_ID_LOOSE + r"\s*(?:です)?\W*$",
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
#: Words that already ask something; without them a resolved reference is asked the way the last turn asked.
_ASKS_SOMETHING = re.compile(
    r"how much|price|cost|in stock|stock|available|availability|have|carry|sell|release|out yet|author|who|"
    r"return|refund|exchange|swap|ship|deliver|\bsend\b|\bhow (?:do|can|long|would)\b|いくら|在庫|ある|発売|返品",
    re.I,
)


#: attribute -> the question the later stages read (server/llm/templates.py _ASKS answers each from the store)
ATTRIBUTE_QUESTIONS = {
    "author": "who is the author of {t}?",
    "publisher": "who is the publisher of {t}?",
    "pages": "how many pages is {t}?",
    "format": "what format is {t}?",
    "language": "what language is {t} in?",
    "release_date": "what is the release date of {t}?",
    "rating": "what is {t} rated?",
}


def warm() -> None:
    """Train the relation classifier now (service start) rather than on the first chat with history."""
    relation_model.warm()


def resolve(text: str, history: Sequence[Turn], resolver: EntityResolver) -> Followup:
    """The message with what it refers to in the conversation's state spelled out (or as it is)."""
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
    state = state_of(history)
    rel = relation_model.classify(text, has_item=state.has_item, has_order=state.order_id is not None)
    if rel.probability < relation_model.MIN_PROBABILITY:
        if not _edition_ask(text, state):
            return Followup(text, relation="new_topic")
        # unsure of the relation, but the message's one slot is an edition of the series in play ("in german?")
        rel = replace(rel, relation="other_volume", attribute=None)
    out = _resolved(text, rel, state, resolver)
    return out if out is not None else Followup(text, relation=rel.relation)


def _resolved(text: str, rel: relation_model.Relation, state: ConversationState, resolver: EntityResolver) -> Followup | None:
    r = rel.relation
    if r in ("same_item", "attribute", "other_volume") and not state.has_item and state.order_id:
        r = "order"  # "is it still processing?": the only thing in play is the order
    if r == "same_item" and rel.pick is None and state.series:
        volume, _, span = relation_model.volume_slot(text)  # "what's the price on number 4?": another volume
        if volume is not None and volume != state.volume and span and not text[span[0]:span[1]].strip().isdigit():
            rel = replace(rel, relation="other_volume", volume=volume, volume_span=span)
            r = "other_volume"
    if r == "order":
        if state.order_id is None:
            return None
        return Followup(f"{text.rstrip()} {state.order_id}", "order", state.order_id, r)
    if not state.has_item:
        return None
    product = _item_product(state, resolver)
    author = (product.author if product is not None else None) or state.author or _series_author(state.series, resolver)
    if r == "attribute" and rel.attribute in ATTRIBUTE_QUESTIONS:
        target = product.title if product is not None else _series_target(state)
        if not target:
            return None
        return Followup(ATTRIBUTE_QUESTIONS[rel.attribute].format(t=target), "attribute", target, r, rel.attribute, author)
    if r == "same_author":
        if not author:
            return None
        besides = f" besides {state.series}" if state.series else ""
        return Followup(f"what other series by {author} do you carry{besides}?", "author", author, r, author=author)
    if r == "other_volume" and state.series:
        n = rel.volume if rel.volume is not None else (state.volume + rel.step if rel.step and state.volume else None)
        if n is not None and n > 0:
            target = f"{state.series} vol {n}"
            span = rel.volume_span
            resolved = text[: span[0]] + target + text[span[1]:] if span else ""
            return Followup(_asked_as(resolved, text, state, target), "volume", target, r, author=author)
    if r in ("other_volume", "same_item") and _edition_ask(text, state):
        vol = f" vol {state.volume}" if state.volume is not None and requested_format(text) != "box_set" else ""
        edition = _LEAD.sub("", text.strip()).rstrip(" ?？。.!")
        target = f"{state.series}{vol} {edition}"
        return Followup(_asked_as(target, text, state, target), "edition", target, r, author=author)
    if r in ("same_item", "other_volume"):  # another volume with no volume named: the item itself
        if rel.pick is not None and state.asins:
            asin = state.asins[rel.pick] if -len(state.asins) <= rel.pick < len(state.asins) else None
            product = resolver.catalog.get_product(asin) if asin else None
        target = product.title if product is not None else _series_target(state)
        if not target:
            return None
        m = _PRODUCT_REF.search(text)
        if m:
            resolved = text[: m.start()] + target + text[m.end():]
            return Followup(_asked_as(resolved, text, state, target), "product", target, r, author=author)
        return Followup(_asked_as("", text, state, target), "product", target, r, author=author)
    return None


def _item_product(state: ConversationState, resolver: EntityResolver):
    """The product in play: the first one the item turn showed, when it is of the series / volume in play."""
    if not state.asins:
        return None
    p = resolver.catalog.get_product(state.asins[0])
    if p is None or (state.series and p.series != state.series) or (state.volume is not None and p.volume != state.volume):
        return None
    return p


def _series_target(state: ConversationState) -> str:
    if not state.series:
        return ""
    return f"{state.series} vol {state.volume}" if state.volume is not None else state.series


def _series_author(series: str | None, resolver: EntityResolver) -> str | None:
    if not series:
        return None
    products = resolver.catalog.series_products(series)
    return products[0].author if products else None


def _asked_as(resolved: str, message: str, state: ConversationState, target: str) -> str:
    """``resolved`` (the message with ``target`` in place of its reference) when it asks something itself, else
    ``target`` asked the way the message asks (price / stock) or, asking neither, the way the item's turn asked."""
    # the message's own words decide, not the title put in (a title with "who" or "have" in it asks nothing)
    if resolved and _ASKS_SOMETHING.search(message) and not re.fullmatch(r"\W*(?:what|how) about\b.*", message.strip(), re.I):
        return resolved
    for source in (message, state.item_ask):
        if asks.PRICE_ASKED.search(source):
            return f"how much is {target}?"
        if re.search(r"stock|available|have|carry|left|sold out|在庫|ある", source, re.I):
            return f"is {target} in stock?"
    return f"tell me about {target}"


def _short(text: str) -> bool:
    return len(text.split()) <= 7


def _edition_ask(text: str, state: ConversationState) -> bool:
    """A short message whose slot is an edition (a format or a language) of the series in play ("and in german?")."""
    return bool(state.series) and _short(text) and bool(requested_format(text) or requested_language(text))
