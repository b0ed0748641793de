"""Checkable claims in an answer: the sentences that state a fact the catalog or a policy can confirm.

A sentence is kept when it carries at least one checkable fact -- a price, a volume number, an author,
a date, a format, a language, a publisher, availability, or a number of days/hours/percent -- and
dropped otherwise (greetings, opinions, "Happy reading!"); a question states nothing and is dropped too
("Do you have Frieren 5 in English?" echoed back is not a claim). Each claim remembers which of the products in
play it talks about (named by ASIN, title or series in the sentence; when it names none and only one
product is in play, that one: "It's a box set.") so the scorer can add those products' fact sheets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from server.hallucination.facts import sentences

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
#: fact kind -> pattern (case-insensitive)
CHECKS: dict[str, re.Pattern[str]] = {
    "price": re.compile(r"(?:US\s?\$|\$|\u00a5|\u20ac|\u00a3)\s?\d|\b\d+(?:\.\d{1,2})?\s?(?:USD|dollars?|bucks|yen)\b", re.I),
    "volume": re.compile(r"\bvol(?:ume)?s?\.?\s*\d|#\d|\bvolumes?\s+(?:one|two|three|four|five|six|seven|eight|nine|ten)\b", re.I),
    "author": re.compile(r"\b(?:written|drawn|illustrated|created|authored|penned)\s+by\b|\bauthor\b|\bmangaka\b|\bby\s+[A-Z][a-z]+\s+[A-Z][a-z]+"),
    # month names capitalised only ("you may return" is not a date)
    "date": re.compile(rf"\b(?:{_MONTHS})\b|\b(?:19|20)\d\d-\d\d-\d\d\b|\b(?:19|20)\d\d\b|(?i:\breleas(?:ed|es|e date)\b|\bcame out\b|\bhit shelves\b)"),
    "format": re.compile(r"\b(?:tankobon|omnibus|box(?:ed)?[\s-]set|digital|e-?book|paperback|hardcover|deluxe)\b", re.I),
    "language": re.compile(r"\b(?:English|Japanese|Spanish|French|German|Italian|Portuguese)\b"),
    "publisher": re.compile(r"\bpublish(?:ed|es|er)\b", re.I),
    "stock": re.compile(r"\b(?:in stock|out of stock|sold out|available|availability|backorder(?:ed)?|pre-?order)\b", re.I),
    "days": re.compile(r"\b\d+(?:\s?-\s?\d+)?\s+(?:business\s+|calendar\s+)?(?:days?|hours?|weeks?|months?|years?)\b|\b\d+\s?%|\bpercent\b", re.I),
}
_NAME_WORDS = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Claim:
    text: str
    kinds: tuple[str, ...]  # which CHECKS matched
    asins: tuple[str, ...] = ()  # the products in play this claim is about


def _get(product: Any, name: str) -> Any:
    return product.get(name) if isinstance(product, Mapping) else getattr(product, name, None)


def _norm(text: str) -> str:
    return " ".join(_NAME_WORDS.findall(text.lower()))


def _mentions(sentence: str, products: Sequence[Any]) -> tuple[str, ...]:
    """Products named in the sentence: by ASIN or title; by series name unless the series name is
    followed by another volume number ("Ramen Samurai Academy vol. 4" names vol. 4, not vol. 3)."""
    norm = f" {_norm(sentence)} "
    found = []
    for p in products:
        asin = _get(p, "asin") or ""
        title, series = _get(p, "title") or "", _get(p, "series") or ""
        if (asin and asin in sentence) or (title and f" {_norm(title)} " in norm):
            found.append(asin)
        elif series and f" {_norm(series)} " in norm:
            stated = re.search(rf" {re.escape(_norm(series))} (?:vol |volume |no )?(\d{{1,4}}) ", norm)
            if stated is None or _get(p, "volume") == int(stated.group(1)):
                found.append(asin)
    return tuple(dict.fromkeys(found))


def checkable_kinds(sentence: str) -> tuple[str, ...]:
    return tuple(kind for kind, pattern in CHECKS.items() if pattern.search(sentence))


def extract_claims(answer_text: str, products_mentioned: Sequence[Any] = (), *, max_claims: int = 8) -> list[Claim]:
    """The answer's checkable sentences, in order (at most ``max_claims``).

    ``products_mentioned``: the products in play (:class:`~server.retrieval.base.Product`, catalog dicts, or
    bare ASIN strings).
    """
    products = [p if not isinstance(p, str) else {"asin": p} for p in products_mentioned]
    claims: list[Claim] = []
    for sentence in sentences(answer_text or ""):
        sentence = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", "", sentence).strip()
        if len(sentence) < 8:
            continue
        if sentence.rstrip("\"')」 ").endswith(("?", "？")):
            continue  # a question states nothing ("Did you mean Vinland Saga?", an echo of the customer's ask)
        kinds = checkable_kinds(sentence)
        if not kinds:
            continue
        asins = _mentions(sentence, products)
        if not asins and len(products) == 1 and _get(products[0], "asin"):
            asins = (_get(products[0], "asin"),)
        claims.append(Claim(sentence, kinds, asins))
        if len(claims) >= max_claims:
            break
    return claims
