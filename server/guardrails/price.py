"""Every price attached to a product mention must be that product's catalog price; wrong ones are rewritten.

A *product mention* is a catalog ASIN, a product's title, or "<series> vol. N" for the products in play
(ASINs in the text, the answer's product cards and the retrieved context). A price is attached to the
nearest mention in the same sentence/bullet (the preceding one wins ties), or to the single product of
the previous sentence in the same paragraph ("... Vol. 1 (B0..). It costs $12.99."). Amounts that are
thresholds or discounts ("free shipping over $35", "$5 off") are not product prices and are left alone.
Non-USD prices attached to a product (``¥1200``) cannot be verified against the USD catalog and are
rewritten to the catalog price too. Tolerance: 0.005.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from server.guardrails._text import Unit, units
from server.guardrails.asin import ASIN_RE, find_asin_like
from server.guardrails.base import GuardrailAction
from server.guardrails.catalog import CatalogLike, CatalogView
from server.guardrails.result import CheckResult
from server.retrieval.base import Product, ScoredChunk

NAME = "price"
TOLERANCE = 0.005

_AMOUNT = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"
PRICE_RE = re.compile(
    rf"(?P<usd_pre>(?:US\s?\$|USD\s?|\$)\s?(?P<a1>{_AMOUNT}))"
    rf"|(?P<usd_post>(?<![\w.])(?P<a2>{_AMOUNT})\s?(?:USD|US dollars?|dollars?|bucks)\b)"
    rf"|(?P<jpy_pre>(?:\u00a5|\uffe5|JPY\s?)\s?(?P<a3>\d[\d,]*))"
    rf"|(?P<jpy_post>(?<![\w.])(?P<a4>\d[\d,]*)\s?(?:yen\b|\u5186|JPY\b))"
    rf"|(?P<other>(?:\u20ac|\u00a3)\s?(?P<a5>\d+(?:[.,]\d{{1,2}})?))",
    re.IGNORECASE,
)
_NOT_PRODUCT_PRICE_BEFORE = re.compile(
    r"(?:over|above|under|below|save|saving|savings of|orders? of|spend|spending|minimum|min\.?|at least|(?:a )?flat(?: rate of)?|less than|more than|worth|"
    r"credit|coupon|gift card|fee|shipping(?: costs?| is)?|up to|threshold of)\s*$",
    re.IGNORECASE,
)
_NOT_PRODUCT_PRICE_AFTER = re.compile(
    r"^\s*(?:off|discount|shipping|minimum|or more|and up|\+|(?:return )?(?:label )?fees?\b|(?:return )?label\b|per (?:order|month|year))",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int
    asin: str


@dataclass(frozen=True)
class PriceClaim:
    start: int
    end: int
    raw: str
    amount: float
    currency: str  # "USD" | "JPY" | "OTHER"


def find_prices(text: str) -> list[PriceClaim]:
    out = []
    for m in PRICE_RE.finditer(text):
        amount_str = next(g for g in (m.group(f"a{i}") for i in range(1, 6)) if g is not None)
        currency = "USD" if (m.group("usd_pre") or m.group("usd_post")) else (
            "JPY" if (m.group("jpy_pre") or m.group("jpy_post")) else "OTHER"
        )
        try:
            amount = float(amount_str.replace(",", "" if currency != "OTHER" else "."))
        except ValueError:
            continue
        before = text[max(0, m.start() - 30) : m.start()]
        after = text[m.end() : m.end() + 20]
        if _NOT_PRODUCT_PRICE_BEFORE.search(before) or _NOT_PRODUCT_PRICE_AFTER.match(after):
            continue
        out.append(PriceClaim(m.start(), m.end(), m.group(0), amount, currency))
    return out


def _mention_patterns(p: Product) -> list[re.Pattern[str]]:
    pats = []
    if p.title:
        words = [re.escape(w) for w in re.split(r"[\s,:]+", p.title) if w]
        pats.append(re.compile(r"[\s,:]*".join(words) + r"(?!\d)", re.IGNORECASE))
    if p.series and p.volume is not None:
        pats.append(
            re.compile(
                re.escape(p.series) + rf"[\s,:\-]*(?:vol(?:ume)?\.?|#|book|no\.?)\s*0*{p.volume}(?!\d)",
                re.IGNORECASE,
            )
        )
    return pats


class PriceGuardrail:
    name = NAME

    def __init__(self, catalog: CatalogLike) -> None:
        self._catalog = CatalogView(catalog)

    def _products(self, asins: Iterable[str]) -> dict[str, Product]:
        out = {}
        for a in asins:
            a = a.upper()
            if a not in out and ASIN_RE.match(a):
                p = self._catalog.product(a)
                if p is not None:
                    out[a] = p
        return out

    def _mentions(self, unit: Unit, products: dict[str, Product], named: frozenset[str] = frozenset()) -> list[_Mention]:
        # (mention, rank): an ASIN beats an exact title, which beats "<series> vol. N" -- editions share
        # series and volume, so "Series, Vol. 2: $13.99" is the print title even though the digital
        # edition's "Series vol 2" pattern matches the same span.
        found: list[tuple[_Mention, int]] = []
        for m in find_asin_like(unit.text):
            if m.group(0).upper() in products:
                found.append((_Mention(m.start(), m.end(), m.group(0).upper()), 0))
        # a product the answer itself names (its card, or an ASIN in the text) outranks a retrieved one whose
        # title or "<series> vol. N" matches the same words: the sentence is about the card under it
        for asin, p in products.items():
            for rank, pat in enumerate(_mention_patterns(p), start=1):
                for m in pat.finditer(unit.text):
                    found.append((_Mention(m.start(), m.end(), asin), rank + (0 if asin in named else 10)))
        # Title patterns of "Series, Vol. 1" also match inside "Series, Vol. 10": keep the longest span.
        found.sort(key=lambda x: (x[0].start, -(x[0].end - x[0].start), x[1]))
        pruned: list[_Mention] = []
        for mention, _ in found:
            if any(o.start <= mention.start and mention.end <= o.end and o.asin != mention.asin for o in pruned):
                continue
            pruned.append(mention)
        return pruned

    def check(
        self, text: str, asins: Sequence[str] = (), context: Sequence[ScoredChunk] = ()
    ) -> CheckResult:
        in_play = [m.group(0) for m in find_asin_like(text)] + list(asins)
        named = frozenset(a.upper() for a in in_play)
        in_play += [sc.chunk.asin for sc in context if sc.chunk.asin]
        products = self._products(in_play)
        if not products:
            return CheckResult(text, tuple(asins))
        replacements: list[tuple[int, int, str]] = []
        actions: list[GuardrailAction] = []
        prev_unit_products: set[str] = set()
        prev_line_end = -1
        # mentions are found in the whole text, then given to each sentence they overlap: a title with a
        # sentence end inside it ("Full Swing!! Nara High, Vol. 1") still owns the price after it
        everywhere = self._mentions(Unit(0, len(text), text, False), products, named)
        for unit in units(text):
            mentions = [_Mention(m.start - unit.start, m.end - unit.start, m.asin) for m in everywhere
                        if m.end > unit.start and m.start < unit.end]
            if unit.bullet or text.rfind("\n", 0, unit.start) != prev_line_end:
                prev_unit_products = set()  # a new line/paragraph: nothing carries over, now or later in it
            carried = prev_unit_products
            for claim in find_prices(unit.text):
                asin = self._attach(claim, mentions, unit.text) or (next(iter(carried)) if len(carried) == 1 else None)
                if asin is None:
                    continue
                price = self._catalog.price(asin)
                if price is None:
                    continue
                if claim.currency == "USD" and abs(claim.amount - price) <= TOLERANCE:
                    continue
                new = f"${price:.2f}"
                replacements.append((unit.start + claim.start, unit.start + claim.end, new))
                actions.append(GuardrailAction(NAME, "rewritten", f"{asin}: {claim.raw} -> {new}"))
            # only the sentence right before carries its product: "Sorry about your copy of X. <quoted policy>.
            # ... worth less than $15" must not hand the policy's amounts to X
            prev_unit_products = {m.asin for m in mentions}
            prev_line_end = text.rfind("\n", 0, unit.start)
        new_text = text
        for start, end, new in sorted(replacements, reverse=True):
            new_text = new_text[:start] + new + new_text[end:]
        return CheckResult(new_text, tuple(asins), tuple(actions))

    @staticmethod
    def _attach(claim: PriceClaim, mentions: list[_Mention], text: str) -> str | None:
        """The product a price is said of: the nearest mention before it in the same clause, else the nearest one
        after it in the same clause ("$9.99 for Berserk vol 1"). A clause ends at ";" -- a list of picks
        ("A, Vol. 1 by X (comedy, $9.99); B, Vol. 1 by Y (...)") must not hand A's price to B, which merely
        stands closer to it than A's own title does."""
        before = [m for m in mentions if m.end <= claim.start and ";" not in text[m.end : claim.start]]
        if before:
            return max(before, key=lambda m: m.end).asin
        after = [m for m in mentions if m.start >= claim.end and ";" not in text[claim.end : m.start]]
        return min(after, key=lambda m: m.start).asin if after else None
