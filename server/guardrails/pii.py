"""PII redaction for the customer's message (before any model sees it) and for answers.

Emails, phone numbers (international ``+CC`` and US formats), payment card numbers (13-19 digits that pass
the Luhn check and start like a card; an order-like 16-digit number that fails Luhn is kept) and street
addresses (number + street name + suffix, optional unit and "City, ST 12345"). Order IDs (``MA-12345678``),
ISBNs and tracking numbers are not PII and are left alone. Each hit becomes a placeholder:
``[EMAIL]`` ``[PHONE]`` ``[CARD]`` ``[ADDRESS]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.guardrails.base import GuardrailAction

NAME = "pii"

EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
    r"|(?<![\w.+-])[A-Za-z0-9._%+-]+\s*[\[(]at[\])]\s*[A-Za-z0-9-]+\s*[\[(]dot[\])]\s*[A-Za-z]{2,}\b",
)
CARD_RE = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
_SEP = r"[\s.\-]"
PHONE_RES = (
    # International: +CC then 2-5 groups, 8-15 digits in all (checked below).
    re.compile(rf"(?<![\w+])\+\d{{1,3}}(?:{_SEP}?\(?\d{{1,5}}\)?){{2,5}}(?![\w-])"),
    # US with separators: (555) 123-4567, 555-123-4567, 555.123.4567, 1-555-123-4567.
    re.compile(rf"(?<![\w-])(?:1{_SEP}?)?(?:\(\d{{3}}\)\s?|\d{{3}}{_SEP})\d{{3}}{_SEP}\d{{4}}(?![\w-])"),
    # Bare 10-11 digits only when a phone word precedes them.
    re.compile(
        r"(?i)(?:call|phone|tel|cell|mobile|text me at|whatsapp|number is|reach me at)[^\d\n]{0,15}"
        r"(?P<num>(?<!\d)1?\d{10}(?!\d))"
    ),
)
_STREET_SUFFIX = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|"
    r"Parkway|Pkwy|Highway|Hwy|Circle|Cir|Square|Sq|Trail|Trl|Loop"
)
ADDRESS_RE = re.compile(
    rf"(?<![\w-])(?P<num>\d{{1,6}}[A-Za-z]?)\s+(?P<name>(?:[A-Za-z0-9'.\-]+\s+){{1,4}}?)(?:{_STREET_SUFFIX})\b\.?"
    r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|#)\.?\s*[A-Za-z0-9\-]+)?"
    r"(?-i:,\s*[A-Z][A-Za-z .]+,\s*[A-Z]{2}(?:\s+\d{5}(?:-\d{4})?)?)?",
    re.IGNORECASE,
)
_NOT_STREET_WORDS = {
    "of", "the", "on", "in", "for", "per", "and", "or", "to", "a", "an", "is", "are", "was", "it", "my",
    "volume", "volumes", "vol", "vols", "book", "books", "copy", "copies", "item", "items", "days", "weeks",
    "hours", "times", "pages", "chapters", "episodes", "at", "by", "from", "with", "all", "more", "off",
    "dollars", "bucks", "usd", "order", "orders", "pack", "set", "sets", "manga", "each",
}


def luhn_ok(digits: str) -> bool:
    total, double = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0


def _card_like(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in "3456" and luhn_ok(digits)


def _isbn_like(digits: str) -> bool:
    return len(digits) == 13 and digits[:3] in ("978", "979")


@dataclass(frozen=True)
class Redaction:
    text: str
    kinds: tuple[str, ...]  # one entry per redacted span, e.g. ("EMAIL", "PHONE")

    @property
    def actions(self) -> tuple[GuardrailAction, ...]:
        if not self.kinds:
            return ()
        counts: dict[str, int] = {}
        for k in self.kinds:
            counts[k] = counts.get(k, 0) + 1
        detail = ",".join(f"{k}x{n}" for k, n in sorted(counts.items()))
        return (GuardrailAction(NAME, "redacted", detail),)


class PiiRedactor:
    name = NAME

    def redact(self, text: str) -> Redaction:
        kinds: list[str] = []

        def sub(pattern: re.Pattern[str], kind: str, keep, value, s: str) -> str:
            out, last = [], 0
            for m in pattern.finditer(s):
                start, end = m.span(value)
                if not keep(m.group(value)):
                    continue
                out.append(s[last:start])
                out.append(f"[{kind}]")
                kinds.append(kind)
                last = end
            out.append(s[last:])
            return "".join(out)

        s = sub(EMAIL_RE, "EMAIL", lambda v: True, 0, text)
        s = sub(CARD_RE, "CARD", lambda v: _card_like(re.sub(r"\D", "", v)), 0, s)
        for i, pat in enumerate(PHONE_RES):
            group = "num" if i == 2 else 0
            s = sub(pat, "PHONE", _phone_ok, group, s)
        s = sub(ADDRESS_RE, "ADDRESS", _address_ok, 0, s)
        return Redaction(s, tuple(kinds))


def _phone_ok(value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return 8 <= len(digits) <= 15 and not _isbn_like(digits)


def _address_ok(value: str) -> bool:
    m = ADDRESS_RE.match(value)
    if m is None:
        return False
    words = [w.lower().strip(".'") for w in m.group("name").split()]
    if not words or any(w in _NOT_STREET_WORDS for w in words):
        return False
    # "5 stars Dr" style noise: the street name needs a letter word that is not just a number.
    return any(re.search(r"[a-z]", w) for w in words)
