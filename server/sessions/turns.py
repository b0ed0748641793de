"""What a chat turn leaves in the session for the next one's follow-ups (server/stages/followup.py)."""

from __future__ import annotations

from typing import Any

from server.ids import find_order_ids
from server.sessions.store import Turn

#: The template tier's question for a missing order number (server/llm/templates.py ASK_ORDER_ID) and the way
#: LLM tiers phrase it: the next bare order id answers it.
_ASKS_ORDER_ID = ("what's your order number", "what is your order number", "share your order number", "order number?")


def turn_of(message: str, resolved: str, facts: Any, result: Any, followup: Any = None) -> Turn:
    """``message`` as the input guardrail left it, ``resolved`` as the stages read it, the facts stage's
    resolution and the response (intent, cards, tier, answer); ``followup`` (server/stages/followup.py) adds the
    relation and attribute the message was resolved with."""
    res = facts.resolution
    products = list(facts.products)
    main = products[0] if products else None
    series = (res.series if res is not None else None) or (main.series if main is not None and res is not None and res.matched_by else None)
    volume = (res.volume if res is not None else None) or (main.volume if main is not None and series else None)
    answer = result.answer or ""
    return Turn(
        message=message,
        resolved=resolved if resolved != message else "",
        intent=result.intent,
        series=series,
        volume=volume,
        format=res.format if res is not None else None,
        asins=tuple(c.asin for c in result.cards) or tuple(p.asin for p in products[:3]),
        order_ids=tuple(dict.fromkeys([*find_order_ids(resolved), *([facts.order_id] if facts.order_id else [])])),
        asked_order_id=any(q in answer.lower() for q in _ASKS_ORDER_ID),
        tier=result.tier,
        answer=answer,
        author=(main.author or None) if main is not None else None,
        attribute=getattr(followup, "attribute", None),
        relation=getattr(followup, "relation", "") or "",
    )
