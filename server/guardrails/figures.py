"""Order ids and policy figures in an answer must come from the store's data, like ASINs and prices do.

* **Order ids** (``MA-12345678``): an answer may state only an order id the customer gave in this message (the
  pipeline looks that id up in the orders table before any tier sees it). Any other id -- a model's
  "example" id, another customer's order -- is fabricated: the sentence or bullet that states it is removed.
* **Policy figures**: amounts, durations and counts that a policy would state ("$14.99", "30 days",
  "5-7 business days", "10%", "42 countries", "1 p.m.") must appear in the retrieved context the answer was
  given (policy, product and review chunks) or in the customer's own message; a dollar amount may also be
  the catalog price of a product in play -- named by ASIN in the answer or its cards, or behind a retrieved
  chunk (the price guardrail checks it is attached to the right one). A sentence with a
  figure found in none of these is removed.

Units are removed surgically (``_text.remove_units``); when nothing meaningful is left the pipeline answers
from the template tier.
"""

from __future__ import annotations

import re
from typing import Sequence

from server.guardrails._text import meaningful, remove_units
from server.guardrails.base import GuardrailAction
from server.guardrails.catalog import CatalogLike, CatalogView
from server.guardrails.result import CheckResult
from server.ids import find_asins, find_order_ids
from server.retrieval.base import ScoredChunk

NAME_ORDER = "order_id"
NAME_FIGURE = "policy_figure"

#: A policy-style figure: money, a percentage, a duration, a count of countries/points/copies, a clock time.
FIGURE_RE = re.compile(
    r"\$\s?\d[\d,]*(?:\.\d{1,2})?"
    r"|\b\d+(?:\.\d+)?\s?%"
    r"|\b\d+(?:\s?(?:-|–|to)\s?\d+)?[\s-](?:business\s|calendar\s)?(?:days?|weeks?|months?|years?|hours?)\b"
    r"|\b\d+\s(?:countries|points?|copies|packages|volumes? per customer)\b"
    r"|\b\d{1,2}(?::\d{2})?\s?(?:[ap]\.m\.|[ap]m\b)",  # no \b after "p.m." (it would need a letter next)
    re.IGNORECASE,
)


class FiguresGuardrail:
    def __init__(self, catalog: CatalogLike) -> None:
        self._catalog = CatalogView(catalog)

    def check(
        self, text: str, asins: tuple[str, ...], context: Sequence[ScoredChunk], message: str | None
    ) -> CheckResult:
        """``message``: the customer's (redacted) message; None skips the order-id check (no message known)."""
        allowed_ids = set(find_order_ids(message)) if message is not None else None
        sources = " ".join(c.chunk.text for c in context) + " " + (message or "")
        allowed_figures = {_norm(m.group(0)) for m in FIGURE_RE.finditer(sources)}
        in_play = {*asins, *find_asins(text), *(c.chunk.asin for c in context if c.chunk.asin)}
        prices = {round(p, 2) for p in (self._catalog.price(a) for a in in_play) if p is not None}
        actions: list[GuardrailAction] = []

        def bad_order_id(unit_text: str) -> str | None:
            if allowed_ids is None:
                return None
            return next((oid for oid in find_order_ids(unit_text) if oid not in allowed_ids), None)

        def bad_figure(unit_text: str) -> str | None:
            for m in FIGURE_RE.finditer(unit_text):
                figure = _norm(m.group(0))
                if figure in allowed_figures:
                    continue
                if figure.startswith("$") and _amount(figure) in prices:
                    continue
                return m.group(0)
            return None

        def drop(unit) -> bool:
            oid = bad_order_id(unit.text)
            if oid is not None:
                actions.append(GuardrailAction(NAME_ORDER, "removed", f"order id {oid} is not the customer's"))
                return True
            figure = bad_figure(unit.text)
            if figure is not None:
                actions.append(GuardrailAction(NAME_FIGURE, "removed", f"figure {figure!r} is not in the store's data"))
                return True
            return False

        repaired, removed = remove_units(text, drop)
        if not removed:
            return CheckResult(text, asins)
        return CheckResult(repaired, asins, tuple(actions), needs_fallback=not meaningful(repaired))


def _norm(figure: str) -> str:
    """Comparable form: lowercase, one space, "to"/en dash as "-", no space around "-" or before "%"."""
    f = " ".join(figure.lower().replace("–", "-").split())
    f = re.sub(r"\s?(?:-|to)\s?(?=\d)", "-", f)
    f = re.sub(r"(\d)[\s-](?=(?:business |calendar )?(?:day|week|month|year|hour))", r"\1 ", f)
    f = re.sub(r"\s?%", "%", f).replace("$ ", "$").replace(",", "")
    f = re.sub(r"(\d)\s?([ap])\.?m\.?$", r"\1 \2m", f)  # "1 p.m." == "1 pm" == "1pm"
    f = re.sub(r"(days|weeks|months|years|hours|points|copies)\b", lambda m: m.group(1)[:-1], f)
    return f


def _amount(figure: str) -> float | None:
    try:
        return round(float(figure.lstrip("$")), 2)
    except ValueError:
        return None
