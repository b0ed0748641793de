"""Stage 6a: the facts an answer may state -- which products the customer means (or that the store does not
carry them), and which policy sections answer the message (BM25 + dense, fused), resolved from the message and
the retrieved chunks (``server/retrieval/entities.py``) -- and the intent the answer addresses.

The classifier labels a message from its words alone; the store's data can correct it. A title the store
resolves under a chitchat label ("mha volume 30 pls") is a product question; a rule question under an order
label with no order id ("my order is $42, can I pay in installments?") is a policy question; a title named with
no order words under an order label (「ナルトは何巻まで取り扱っていますか」) is a product question. The intent
settled here is routed, answered and reported (``ChatResponse.intent``); the classifier's confidence stays.

A message may ask two things ("is Berserk 14 in stock? also what does shipping to Germany cost"): products
named exactly and picks for a recommendation asked for are resolved whatever the intent, so the answer can
address both asks."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from typing import Any, Callable, Sequence

from server.ids import find_order_id, find_order_ids
from server.llm.templates import Facts
from server.request import RequestContext
from server.retrieval import asks
from server.retrieval.base import ScoredChunk
from server.retrieval.entities import EntityResolver, Resolution, requested_genres

#: Intents whose answers are about products (and show product cards).
PRODUCT_INTENTS = frozenset({"product_question", "price_deal", "recommendation", ""})
#: ``(order_id, customer_id) -> order row | None``: the catalog's lookup, which answers the account's orders only.
OrderLookup = Callable[[str, str], "dict[str, Any] | None"]


async def facts_for(
    resolver: EntityResolver, text: str, intent: str, order_id: str | None, chunks: Sequence[ScoredChunk],
    limit: int, ctx: RequestContext, *, orders: OrderLookup | None = None, customer_id: str = "",
) -> Facts:
    """``orders(order_id, customer_id)``: the catalog's order lookup, scoped to the account (None = no orders)."""
    with ctx.timings.stage("entities"):
        return await asyncio.to_thread(_facts_for_customer, resolver, text, intent, order_id, chunks, limit, orders,
                                       customer_id)


def _facts_for_customer(
    resolver: EntityResolver, text: str, intent: str, order_id: str | None, chunks: Sequence[ScoredChunk], limit: int,
    orders: OrderLookup | None, customer_id: str,
) -> Facts:
    """:func:`_facts`, and the orders the message names looked up on ``customer_id``'s account (one thread hop)."""
    facts = _facts(resolver, text, intent, order_id, chunks, limit)
    ids = find_order_ids(text) or ([order_id] if order_id else [])
    found = {i: orders(i, customer_id) for i in ids} if orders is not None else {}
    return replace(facts, customer_id=customer_id, orders=found)


def _facts(
    resolver: EntityResolver, text: str, intent: str, order_id: str | None, chunks: Sequence[ScoredChunk], limit: int
) -> Facts:
    res = resolver.resolve(text, chunks, limit=limit)
    author = _author_asked(resolver, text, intent)
    if author:  # "what other series by Gege Akutami do you carry?" (a follow-up's "anything else by her?")
        others = [s for s in resolver.catalog.authors().get(author, []) if s != res.series]
        products = [p for p in (_first_volume(resolver, s) for s in others) if p is not None][:limit]
        return Facts(order_id=order_id, intent="recommendation", products=tuple(products), resolution=res,
                     author=author)
    titles = (*res.not_carried, *([res.unknown] if res.unknown else []),
              *([res.series] if res.series and res.matched_by in ("name", "fuzzy") else []))
    policies = resolver.policies(text, chunks, titles=titles) if intent != "escalation" else []
    intent = answering_intent(intent, text, res, order_id, bool(policies))
    picks_asked = asks.picks_asked(text, _named(res))
    if intent == "recommendation" and not picks_asked and _title_asked(text, res):
        intent = "product_question"  # "looking for Sora no Tera": one title asked for (not ours), not picks
    if intent == "recommendation" or (intent != "escalation" and picks_asked):
        products = resolver.recommend(text, res, chunks, limit)
    elif intent in PRODUCT_INTENTS and res.not_carried:
        products = resolver.recommend(text, res, chunks, 2)  # "something similar" -- real catalog products
    elif res.unknown or res.candidates:
        products = []  # a title nobody listed, or one to ask about: no product is priced (nor carded) for it
    elif intent in PRODUCT_INTENTS or res.matched_by in ("name", "fuzzy"):
        products = list(res.products)
    else:
        products = []
    details = _details(resolver, products[:1]) if intent in ("product_question", "price_deal") else {}
    return Facts(order_id=order_id, intent=intent, products=tuple(products), resolution=res, policies=tuple(policies),
                 details=details)


#: "other / more / else ... by <author>" -- an author's other series asked for
_MORE_BY = re.compile(r"\b(?:other|more|else|another)\b[^.?!]*\bby\b", re.I)


def _author_asked(resolver: EntityResolver, text: str, intent: str) -> str | None:
    """The catalog author whose other series the message asks for, if any."""
    if intent in ("order_status", "escalation", "return_refund") or not _MORE_BY.search(text):
        return None
    authors = getattr(resolver.catalog, "authors", None)
    if authors is None:
        return None
    low = text.lower()
    return next((a for a in authors() if a.lower() in low), None)


def _first_volume(resolver: EntityResolver, series: str) -> Any:
    """A series' first English paperback in stock (else its first product)."""
    products = resolver.catalog.series_products(series)
    books = [p for p in products if p.format == "tankobon" and p.language == "English"] or products
    return next((p for p in books if p.stock > 0), books[0] if books else None)


def _details(resolver: EntityResolver, products: Sequence[Any]) -> dict[str, Any]:
    get = getattr(resolver.catalog, "product_details", None)
    return {p.asin: get(p.asin) for p in products} if get is not None else {}


def answering_intent(intent: str, text: str, res: Resolution, order_id: str | None, policy_found: bool) -> str:
    """The intent the answer addresses: the classifier's, unless the store's data says the message asks another
    thing. An order id given keeps the label: the order is looked up whatever else is asked."""
    if order_id or find_order_id(text):
        return intent
    named = _named(res)
    if asks.ABOUT_THE_BOT.search(text) and not named and not asks.POLICY.search(text):
        return "chitchat"  # "are you a person or a program?" is not a request for one
    if intent == "chitchat" and not asks.SMALL_TALK.search(text):
        if named and asks.ASKS_FOR_ITEM.search(text):  # not fan talk: "Vagabond volume 12 broke me" stays small talk
            return "recommendation" if asks.RECOMMEND.search(text) else "product_question"
        if not named and (asks.GENRE_NAMED.search(text) or asks.RECOMMEND.search(text)):
            return "recommendation"  # "any josei bangers u got?", "more mystery pls"
        if asks.RULE_NOT_ORDER.search(text):
            return "policy_faq"  # 「仮想通貨で払えますか」
    if intent == "order_status":
        if res.not_ours or (res.matched_by == "name" and not asks.ORDER_WORDS.search(text)):
            return "product_question"  # a title asked about, no order in sight
        if policy_found and asks.RULE_NOT_ORDER.search(text):
            return "policy_faq"  # "my order is $42, can I split it into installments?" asks a rule, not a lookup
    if intent in ("product_question", "price_deal") and asks.picks_asked(text, named):
        return "recommendation"  # "gimme isekai recs pls", "anything similar to Berserk?"
    if intent == "recommendation" and res.matched_by in ("name", "fuzzy") and res.volume is not None \
            and not asks.picks_asked(text, named):
        return "price_deal" if asks.PRICE_ASKED.search(text) else "product_question"  # "got any aot vol 5 rn?"
    if intent in ("product_question", "price_deal") and named and policy_found and asks.RETURN_ASK.search(text):
        return "return_refund"  # "can i swap my horimiya 2 for a different volume"
    if intent in ("product_question", "price_deal") and not named and policy_found and asks.POLICY_TOPIC.search(text):
        return "policy_faq"  # 「予約をキャンセルすると手数料はかかりますか」, "can i pay with afterpay?" name no title
    if intent == "policy_faq" and named and not asks.POLICY.search(text) and not asks.RULE_NOT_ORDER.search(text):
        return "price_deal" if asks.PRICE_ASKED.search(text) else "product_question"  # "what do you charge for X?"
    return intent


def _title_asked(text: str, res: Resolution) -> bool:
    """A recommendation label on a message that asks for one title the store cannot match: a title not ours, or
    nothing matched at all, asked for as an item, with no recommend/similar/genre words."""
    if asks.SIMILAR_TO.search(text) or asks.RECOMMEND.search(text) or requested_genres(text):
        return False
    return bool(res.unknown or res.candidates) or (not res.products and not res.not_carried
                                                   and bool(asks.ONE_ITEM_ASKED.search(text)))


def _named(res: Resolution) -> bool:
    """The message names a title: one the store carries (exactly or fuzzily) or a well-known one it does not."""
    return res.not_ours or res.matched_by in ("name", "fuzzy")


def grounded_context(chunks: Sequence[ScoredChunk], facts: Facts) -> list[ScoredChunk]:
    """The answer's context: the policy sections the facts stage chose (BM25 + dense) first, then the retrieved
    product and review chunks. Every tier, the output guardrails and the hallucination scorer see this one list,
    so a policy figure quoted from a section found lexically is grounded in what they check against."""
    if not facts.policies:
        return list(chunks)
    chosen = {c.chunk.doc_id for c in facts.policies}
    return [*facts.policies, *(c for c in chunks if c.chunk.doc_id not in chosen)]
