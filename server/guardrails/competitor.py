"""Answers must not send customers to other stores: a sentence/bullet naming a competitor is removed.

Names are matched as stores, not as words: "Target" only capitalised and not in "target audience";
"Crunchyroll" only as its store/shop (streaming on Crunchyroll is fine to mention). Amazon is not on the
list: this store's catalog is keyed by ASINs. The list is configurable.
"""

from __future__ import annotations

import re
from typing import Sequence

from server.guardrails._text import meaningful, remove_units, strip_dangling_leadins
from server.guardrails.base import GuardrailAction
from server.guardrails.result import CheckResult

NAME = "competitor"

#: canonical name -> regex (case-insensitive unless the pattern turns it off with (?-i:...)).
DEFAULT_COMPETITORS: dict[str, str] = {
    "Barnes & Noble": r"barnes\s*(?:&|and|&amp;)\s*noble|(?-i:\bB&N\b)|bn\.com",
    "Book Depository": r"book\s*depository",
    "Right Stuf": r"\bright\s*stuf\b(?:\s*anime)?|\brightstuf(?:anime)?(?:\.com)?",
    "Crunchyroll Store": r"crunchyroll(?:'s)?\s*(?:store|shop)|store\.crunchyroll\.com",
    "Kinokuniya": r"kinokuniya|\u7d00\u4f0a\u570b\u5c4b",
    "Books-A-Million": r"books[\s-]*a[\s-]*million|(?-i:\bBAM!)",
    "Walmart": r"wal[\s-]?mart",
    "Target": r"(?-i:\bTarget\b)(?!\s+(?:audience|age|demographic|readers?|market|group|reader)\b)|target\.com",
    "eBay": r"\be-?bay\b",
    "BookWalker": r"book\s*walker",
}


class CompetitorGuardrail:
    name = NAME

    def __init__(self, competitors: dict[str, str] | None = None) -> None:
        comps = competitors or DEFAULT_COMPETITORS
        self._patterns = {name: re.compile(rf"(?:{pat})", re.IGNORECASE) for name, pat in comps.items()}

    def mentions(self, text: str) -> list[str]:
        return [name for name, pat in self._patterns.items() if pat.search(text)]

    def check(self, text: str, asins: Sequence[str] = ()) -> CheckResult:
        named = self.mentions(text)
        if not named:
            return CheckResult(text, tuple(asins))
        new_text, removed = remove_units(text, lambda u: bool(self.mentions(u.text)))
        new_text = strip_dangling_leadins(new_text)
        actions = [GuardrailAction(NAME, "removed", f"{name} ({len(removed)} sentence(s))") for name in named]
        needs_fallback = not meaningful(new_text)
        if needs_fallback:
            actions.append(GuardrailAction(NAME, "fallback", "nothing meaningful left after removal"))
        return CheckResult(new_text, tuple(asins), tuple(actions), needs_fallback)
