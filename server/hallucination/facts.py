"""The text a claim is checked against: one compact fact sheet per product, plus source windows.

:func:`fact_text` is shared by training (``model_repository/training/hallucination.py`` builds its
(source, claim) pairs from it) and serving (the scorer adds it for every product in play), so the
cross-encoder sees the same source layout in both places. The most-checked facts come first: the scorer
runs with ``max_length=128`` and a long source is truncated from its tail.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

FORMAT_NAMES = {"tankobon": "tankobon (paperback)", "omnibus": "omnibus", "box_set": "box set", "digital": "digital"}

_FIELDS = ("asin", "title", "series", "volume", "author", "publisher", "format", "language", "price", "stock", "release_date")


def _get(product: Any, name: str, default: Any = None) -> Any:
    if isinstance(product, Mapping):
        return product.get(name, default)
    return getattr(product, name, default)


def availability(product: Any) -> str:
    if _get(product, "format") == "digital":
        return "digital, always available"
    stock = int(_get(product, "stock", 0) or 0)
    return f"{stock} in stock" if stock > 0 else "out of stock"


def fact_text(product: Any, *, description: bool = False) -> str:
    """Fact sheet of a catalog row (a ``catalog.jsonl`` dict or a :class:`server.retrieval.base.Product`)."""
    volume = _get(product, "volume")
    fmt = _get(product, "format", "")
    lines = [
        f"Title: {_get(product, 'title', '')}",
        f"Series: {_get(product, 'series', '')}",
        *([f"Volume: {volume}"] if volume is not None else []),
        f"Author: {_get(product, 'author', '')}",
        f"Price: ${float(_get(product, 'price', 0.0)):.2f}",
        f"Format: {FORMAT_NAMES.get(fmt, fmt)}",
        f"Language: {_get(product, 'language', '')}",
        f"Release date: {_get(product, 'release_date', '')}",
        f"Availability: {availability(product)}",
        f"Publisher: {_get(product, 'publisher', '')}",
    ]
    text = "\n".join(lines)
    desc = _get(product, "description") if description else None
    return f"{text}\n\n{desc}" if desc else text


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_ABBREV_END = re.compile(r"(?:\b(?:Vol|vol|No|no|e\.g|i\.e|etc|Mr|Ms|Dr|St|approx|p\.m|a\.m|U\.S)\.)$")


def sentences(text: str) -> list[str]:
    """Sentence split that keeps "Vol. 3", "$12.99", "e.g." and "1 p.m." inside their sentence."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n|\n(?=\s*(?:[-*\u2022]|\d+[.)])\s)", text):
        buf = ""
        for piece in _SENTENCE_END.split(para.strip()):
            buf = f"{buf} {piece}".strip() if buf else piece
            if not _ABBREV_END.search(buf):
                out.append(buf)
                buf = ""
        if buf:
            out.append(buf)
    return [s.strip() for s in out if s.strip()]


def windows(text: str, *, max_chars: int = 360) -> list[str]:
    """Split a retrieved source into windows of whole sentences (<= ``max_chars`` where possible), so a
    fact deep in a long policy or description is not lost to the 128-token truncation."""
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    out: list[str] = []
    buf = ""
    for s in sentences(text):
        if buf and len(buf) + 1 + len(s) > max_chars:
            out.append(buf)
            buf = s
        else:
            buf = f"{buf} {s}".strip()
    if buf:
        out.append(buf)
    return out


def product_fields(product: Any) -> dict[str, Any]:
    return {f: _get(product, f) for f in _FIELDS}


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


# ----------------------------------------------------------------------------- evidence hints
# The cross-encoder gets the claim with a short list of its fact tokens that the source does not contain
# ("... [unmatched: 15.99, Kaito]" or "... [matched]"). Training and serving build the model input with
# the same function (:func:`model_input`), so the served contract stays SOURCE/CLAIM strings; the hint
# lets a small model learn token-level grounding within a ~3 minute CPU fine-tune, and the model still
# decides (dates in other formats, "paperback" vs "tankobon", policy wording, unsupported claims).
_MONTH_NUM = {m: i for i, m in enumerate(
    ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"), 1)}
_DATE_LONG = re.compile(r"\b(" + "|".join(_MONTH_NUM) + r")\s+(\d{1,2}),?\s+((?:19|20)\d\d)\b")
_DATE_DMY = re.compile(r"\b(\d{1,2})\s+(" + "|".join(_MONTH_NUM) + r"),?\s+((?:19|20)\d\d)\b")
_MONTH_YEAR = re.compile(r"\b(" + "|".join(_MONTH_NUM) + r")\s+((?:19|20)\d\d)\b")
_ISO = re.compile(r"\b(?:19|20)\d\d-\d\d(?:-\d\d)?\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CAPITAL = re.compile(r"\b[A-Z][a-zA-Z'\-]+\b")
_KEYWORDS = ("tankobon", "paperback", "omnibus", "box set", "digital", "in stock", "out of stock", "always available")
_NOT_FACT = frozenset(
    "I It It's Its This That These Those The A An You You'd Your We Our They He She Yes No Also And But Or So If "
    "Great Sure Hi Hello Thanks Volume Vol Per According Good Right Both Every Each Orders Returns Books Box "
    "Set Edition Manga".split()
)


def fact_tokens(claim: str) -> list[str]:
    """The checkable tokens of a claim: ISO dates, numbers, capitalised names, format/stock words."""
    tokens: list[str] = []
    text = claim.replace(",", "") if not _DATE_LONG.search(claim) else claim

    def iso(m: re.Match[str], order: str) -> str:
        g = m.groups()
        if order == "mdy":
            tokens.append(f"{g[2]}-{_MONTH_NUM[g[0]]:02d}-{int(g[1]):02d}")
        elif order == "dmy":
            tokens.append(f"{g[2]}-{_MONTH_NUM[g[1]]:02d}-{int(g[0]):02d}")
        else:
            tokens.append(f"{g[1]}-{_MONTH_NUM[g[0]]:02d}")
        return " "

    text = _DATE_LONG.sub(lambda m: iso(m, "mdy"), text)
    text = _DATE_DMY.sub(lambda m: iso(m, "dmy"), text)
    text = _MONTH_YEAR.sub(lambda m: iso(m, "my"), text)
    tokens += _ISO.findall(text)
    text = _ISO.sub(" ", text).replace(",", "")
    tokens += _NUMBER.findall(text)
    tokens += [w for w in _CAPITAL.findall(text) if w not in _NOT_FACT]
    low = text.lower()
    tokens += [k for k in _KEYWORDS if k in low]
    return list(dict.fromkeys(tokens))


def unmatched(source: str, claim: str) -> list[str]:
    hay = source.replace(",", "").lower()
    return [t for t in fact_tokens(claim) if t.lower() not in hay]


def model_input(source: str, claim: str) -> tuple[str, str]:
    """The (SOURCE, CLAIM) strings the cross-encoder sees, in training and in serving."""
    missing = unmatched(source, claim)
    return source, f"{claim} [unmatched: {', '.join(missing[:6])}]" if missing else f"{claim} [matched]"
