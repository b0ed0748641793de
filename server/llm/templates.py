"""The template tier: grounded answers without an LLM, for every intent.

Used directly for the intents routed to "template" and as the last fallback of every other route. Facts
come only from the catalog (titles, prices, stock), the orders table and retrieved policy chunks -- the
template never invents a product, a price or a policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Sequence

from server.llm.base import LLMAnswer, LLMRequest
from server.retrieval.base import Product, ScoredChunk

ORDER_ID = re.compile(r"\bMA-\d{8}\b")
MODEL = "template"

BLOCKED = (
    "I can't help with that request. I can help you find manga, check prices and stock, "
    "track an order, or explain our shipping and return policies."
)
UNAVAILABLE = (
    "Sorry, I can't look that up right now. Please try again in a moment, "
    "or ask for a human agent and we'll take it from there."
)


@dataclass(frozen=True)
class Facts:
    """What the pipeline already knows, handed to the template tier."""

    order_id: str | None = None
    products: tuple[Product, ...] = ()


def find_order_id(text: str) -> str | None:
    found = ORDER_ID.search(text.upper())
    return found.group(0) if found else None


class TemplateTier:
    name = "template"
    model = MODEL

    def __init__(self, get_order: Callable[[str], dict[str, Any] | None]) -> None:
        self._get_order = get_order

    async def generate(self, request: LLMRequest, facts: Facts | None = None) -> LLMAnswer:
        facts = facts or Facts()
        handler = {
            "chitchat": self._chitchat,
            "escalation": self._escalation,
            "order_status": self._order_status,
            "return_refund": self._policy,
            "policy_faq": self._policy,
            "product_question": self._product,
            "price_deal": self._price,
            "recommendation": self._recommendation,
        }.get(request.intent, self._unknown)
        text, asins = handler(request, facts)
        return LLMAnswer(text=text, tier="template", model=MODEL, product_asins=tuple(asins))

    async def stream(self, request: LLMRequest, facts: Facts | None = None) -> AsyncIterator[str]:
        answer = await self.generate(request, facts)
        yield answer.text

    def blocked(self) -> LLMAnswer:
        return LLMAnswer(text=BLOCKED, tier="template", model=MODEL)

    # ---------------------------------------------------------------- per intent
    def _chitchat(self, request: LLMRequest, facts: Facts) -> tuple[str, list[str]]:
        words = set(re.findall(r"[a-z]+", request.user_message.lower()))
        if words & {"thanks", "thank", "thx", "cheers"}:
            return "You're welcome! Is there anything else I can help you find?", []
        if words & {"bye", "goodbye", "later"}:
            return "Thanks for stopping by. Happy reading!", []
        return (
            "Hi! I'm MangaAssist. I can help you find manga, check prices and stock, "
            "track an order, or explain our shipping and return policies.",
            [],
        )

    def _escalation(self, request: LLMRequest, facts: Facts) -> tuple[str, list[str]]:
        return (
            "I'm sorry for the trouble. I'm handing this conversation to a human agent now; "
            "they will see everything so far, so you won't need to repeat yourself.",
            [],
        )

    def _order_status(self, request: LLMRequest, facts: Facts) -> tuple[str, list[str]]:
        order_id = facts.order_id or find_order_id(request.user_message)
        if order_id is None:
            return "I can check that for you. What's your order number? It looks like MA-12345678.", []
        order = self._get_order(order_id)
        if order is None:
            return f"I couldn't find an order {order_id}. Could you double-check the number?", []
        return _order_text(order_id, order), []

    def _policy(self, request: LLMRequest, facts: Facts) -> tuple[str, list[str]]:
        chunk = _first(request.context, "policy")
        if chunk is None:
            return (
                "I couldn't look up that policy just now. You can find all our policies on the Help page, "
                "or ask for a human agent.",
                [],
            )
        return f"Here's what our policy says: {_excerpt(chunk.chunk.text)}", []

    def _product(self, request: LLMRequest, facts: Facts) -> tuple[str, list[str]]:
        if not facts.products:
            return _not_found()
        p = facts.products[0]
        details = ", ".join(x for x in (p.format, p.language, f"rated {p.age_rating}" if p.age_rating else "") if x)
        text = f"{p.title}" + (f" ({details})" if details else "") + f" is {_price(p)} and {_stock(p)}."
        if p.release_date:
            text += f" Release date: {p.release_date}."
        others = [o for o in facts.products[1:]]
        if others:
            text += " Also in our catalog: " + "; ".join(f"{o.title} ({_price(o)})" for o in others) + "."
        return text, [x.asin for x in facts.products]

    def _price(self, request: LLMRequest, facts: Facts) -> tuple[str, list[str]]:
        if not facts.products:
            return _not_found()
        lines = [f"{p.title}: {_price(p)}, {_stock(p)}." for p in facts.products]
        return " ".join(lines), [p.asin for p in facts.products]

    def _recommendation(self, request: LLMRequest, facts: Facts) -> tuple[str, list[str]]:
        if not facts.products:
            return (
                "Tell me a series or genre you enjoy and I'll suggest something similar from our catalog.",
                [],
            )
        picks = "; ".join(f"{p.title} by {p.author} ({_price(p)})" if p.author else f"{p.title} ({_price(p)})"
                          for p in facts.products)
        return f"You might enjoy: {picks}.", [p.asin for p in facts.products]

    def _unknown(self, request: LLMRequest, facts: Facts) -> tuple[str, list[str]]:
        if facts.products:
            return self._price(request, facts)
        chunk = _first(request.context, "policy")
        if chunk is not None:
            return f"This may help: {_excerpt(chunk.chunk.text)}", []
        return UNAVAILABLE, []


def _order_text(order_id: str, order: dict[str, Any]) -> str:
    status = str(order.get("status", "")).lower()
    carrier = order.get("carrier") or "the carrier"
    tracking = order.get("tracking_number")
    eta = order.get("eta")
    track = f" (tracking number {tracking})" if tracking else ""
    text = {
        "processing": f"Your order {order_id} is being prepared and hasn't shipped yet.",
        "shipped": f"Your order {order_id} has shipped with {carrier}{track}.",
        "out_for_delivery": f"Your order {order_id} is out for delivery with {carrier}{track}.",
        "delivered": f"Your order {order_id} was delivered.",
        "cancelled": f"Your order {order_id} was cancelled.",
    }.get(status, f"Your order {order_id} has status '{status or 'unknown'}'.")
    if eta and status in ("processing", "shipped", "out_for_delivery"):
        text += f" Estimated delivery: {eta}."
    return text


def _not_found() -> tuple[str, list[str]]:
    return (
        "I couldn't find that title in our catalog. Could you share the series name or the volume number?",
        [],
    )


def _first(chunks: Sequence[ScoredChunk], source_type: str) -> ScoredChunk | None:
    return next((c for c in chunks if c.chunk.source_type == source_type), None)


def _excerpt(text: str, limit: int = 400) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[: end + 1] if end > 80 else cut.rstrip() + "..."


def _price(p: Product) -> str:
    return f"${p.price:.2f}"


def _stock(p: Product) -> str:
    return "in stock" if p.stock > 0 else "currently out of stock"
