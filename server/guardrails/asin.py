"""Every product ID in an answer must exist in the catalog; invalid ones are removed surgically.

An ASIN is ``B0`` + 8 upper-case alphanumerics. We also catch *near* ASINs (``B0`` + 6..10 alphanumerics):
a model that drops or adds a character has still fabricated an ID. The bullet or sentence that mentions
an invalid ID is removed (with the ID's product event); the rest of the answer stays. When nothing
meaningful is left, the caller must fall back to the template tier.
"""

from __future__ import annotations

import re
from typing import Sequence

from server.guardrails._text import meaningful, remove_units, strip_dangling_leadins
from server.guardrails.base import GuardrailAction
from server.guardrails.catalog import CatalogLike, CatalogView
from server.guardrails.result import CheckResult
from server.ids import ASIN_RE

NAME = "asin"
#: Anything that looks like an attempt at an ASIN (``B0``/``b0`` + 6..10 alphanumerics; no word starts so).
ASIN_LIKE_RE = re.compile(r"(?<![A-Za-z0-9])[Bb]0[A-Za-z0-9]{6,10}(?![A-Za-z0-9])")


def find_asin_like(text: str) -> list[re.Match[str]]:
    return list(ASIN_LIKE_RE.finditer(text))


class AsinGuardrail:
    name = NAME

    def __init__(self, catalog: CatalogLike) -> None:
        self._catalog = CatalogView(catalog)

    def is_valid(self, token: str) -> bool:
        asin = token.upper()
        return bool(ASIN_RE.match(asin)) and self._catalog.exists(asin)

    def check(self, text: str, asins: Sequence[str] = ()) -> CheckResult:
        invalid_in_text = sorted({m.group(0) for m in find_asin_like(text) if not self.is_valid(m.group(0))})
        actions: list[GuardrailAction] = []
        new_text = text
        if invalid_in_text:
            bad = set(invalid_in_text)
            new_text, removed = remove_units(
                text, lambda u: any(m.group(0) in bad for m in find_asin_like(u.text))
            )
            new_text = strip_dangling_leadins(new_text)
            for token in invalid_in_text:
                actions.append(GuardrailAction(NAME, "removed", f"{token}: not in catalog"))
        kept: list[str] = []
        for asin in asins:
            if self.is_valid(asin):
                if asin.upper() not in kept:
                    kept.append(asin.upper())
            elif asin not in invalid_in_text:
                actions.append(GuardrailAction(NAME, "removed", f"{asin}: product card not in catalog"))
        needs_fallback = bool(actions) and not meaningful(new_text)
        if needs_fallback:
            actions.append(GuardrailAction(NAME, "fallback", "nothing meaningful left after removal"))
        return CheckResult(new_text, tuple(kept), tuple(actions), needs_fallback)
