"""Factual correctness: every identifier and figure in an answer must be true in the store's data.

:class:`StoreFacts` loads the data directory (``catalog.jsonl``, ``policies.jsonl``, ``orders.jsonl`` and,
when present, ``series.jsonl``). :func:`check_answer` finds the ASINs, order ids, prices, dates, policy
figures, stock claims and not-carried series in one answer (and its cards) and returns one
:class:`Violation` per claim the data does not support.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

#: Violations that mean the answer invented something (the "fabricated" count; the gate wants 0).
FABRICATED_KINDS = frozenset({"asin", "order_id", "price", "date", "policy_figure"})

ASIN = re.compile(r"\bB0[A-Z0-9]{8}\b")
ORDER_ID = re.compile(r"\bMA-\d{8}\b", re.IGNORECASE)
PRICE = re.compile(
    r"\$\s?(\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)\b"
    r"|\b(\d+(?:\.\d{1,2})?)\s?(?:USD|US dollars|dollars)\b",
    re.IGNORECASE,
)
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
DATE_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
DATE_MDY = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.IGNORECASE)
DATE_DMY = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH},?\s+(\d{{4}})\b", re.IGNORECASE)
DURATION = re.compile(
    r"\b(\d+)(?:\s*(?:-|–|to)\s*(\d+))?[\s-]*((?:business\s+|calendar\s+|working\s+)?(?:day|hour|week|month|year)s?)\b",
    re.IGNORECASE,
)
PERCENT = re.compile(r"\b(\d+(?:\.\d+)?)\s?(?:%|percent\b)", re.IGNORECASE)
COUNT = re.compile(r"\b(\d+)\s+(countries|states|regions)\b", re.IGNORECASE)
CLOCK = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s?m\b\.?", re.IGNORECASE)
SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])(?<!vol\.)(?<!no\.)(?<!vs\.)\s+", re.IGNORECASE)  # "Vol. 3" is no sentence end
OUT_OF_STOCK = re.compile(r"out of stock|sold out|not in stock|isn't in stock|is not in stock|no longer in stock", re.I)
IN_STOCK = re.compile(r"\bin stock\b", re.I)
AVAILABILITY = re.compile(
    r"\$\s?\d|\bin stock\b|\bavailable\b|\bwe (?:have|carry|stock|sell)\b|\byou can (?:buy|order|get)\b|\bfor sale\b", re.I
)
DECLINE = (
    "don't carry", "do not carry", "not carry", "doesn't carry", "isn't in our catalog", "not in our catalog",
    "don't stock", "we don't have", "not available", "unavailable", "don't sell", "do not sell", "not something we",
)
NOT_FOUND = ("couldn't find", "could not find", "can't find", "cannot find", "not found", "no order", "doesn't match")
#: Any number (with its $ / %), masked to compare a quoted policy sentence with its source whatever the figures.
NUMBER = re.compile(r"\$?\d[\d,]*(?:\.\d+)?%?")
EXAMPLE_CUE = re.compile(r"(?:looks like|e\.g\.|for example|such as|format|like)\W{0,3}$", re.IGNORECASE)


@dataclass(frozen=True)
class Violation:
    kind: str  # asin | order_id | price | date | policy_figure | stock | card_price | card_stock | not_carried
    value: str
    why: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "value": self.value, "why": self.why}


@dataclass
class FactReport:
    violations: list[Violation] = field(default_factory=list)

    @property
    def fabricated(self) -> int:
        return sum(v.kind in FABRICATED_KINDS for v in self.violations)

    @property
    def ok(self) -> bool:
        return not self.violations


# ----------------------------------------------------------------------------------------- the data
@dataclass
class StoreFacts:
    products: dict[str, dict[str, Any]]  # asin -> catalog row
    orders: dict[str, dict[str, Any]]  # ORDER ID -> order row
    policies: list[dict[str, Any]]
    carried: dict[str, dict[str, Any]]  # lower-cased series name -> series row (carried)
    not_carried: dict[str, dict[str, Any]]  # lower-cased series name -> series row (carried = false)
    by_title: dict[str, list[str]] = field(default_factory=dict)  # lower-cased title -> asins
    by_series: dict[str, list[str]] = field(default_factory=dict)  # lower-cased series -> asins

    def __post_init__(self) -> None:
        for asin, p in self.products.items():
            self.by_title.setdefault(str(p.get("title", "")).lower(), []).append(asin)
            self.by_series.setdefault(str(p.get("series", "")).lower(), []).append(asin)
        policy_text = " ".join(str(p.get("text", "")) for p in self.policies)
        self.policy_prices = {_money(m) for m in _prices(policy_text)}
        self.policy_dates = set(_dates(policy_text))
        self.policy_figures = set(_figure_keys(policy_text))
        #: masked policy sentence -> the figures it states (a sentence may occur in several sections)
        self.policy_quotes: dict[str, set[tuple[str, ...]]] = {}
        for p in self.policies:
            for sentence in SENTENCE_SPLIT.split(" ".join(str(p.get("text", "")).split())):
                if NUMBER.search(sentence):
                    self.policy_quotes.setdefault(_masked(sentence), set()).add(tuple(NUMBER.findall(sentence)))
        self.known_dates = {str(p.get("release_date", "")) for p in self.products.values()}
        for o in self.orders.values():
            self.known_dates |= {str(o.get("placed_at", "")), str(o.get("eta", ""))}
        self.known_dates.discard("")

    @classmethod
    def load(cls, data_dir: str | Path) -> "StoreFacts":
        data = Path(data_dir)
        products = {p["asin"]: p for p in _read_jsonl(data / "catalog.jsonl")}
        orders = {str(o["order_id"]).upper(): o for o in _read_jsonl(data / "orders.jsonl")}
        policies = _read_jsonl(data / "policies.jsonl")
        series_path = data / "series.jsonl"
        if series_path.exists():
            rows = _read_jsonl(series_path)
        else:  # no series list: the store carries exactly the catalog's series
            rows = [{"series": s, "carried": True, "aliases": []} for s in sorted({p["series"] for p in products.values()})]
        carried = {r["series"].lower(): r for r in rows if r.get("carried", True)}
        not_carried = {r["series"].lower(): r for r in rows if not r.get("carried", True)}
        return cls(products, orders, policies, carried, not_carried)

    def series_names(self, series: str) -> list[str]:
        """The series' name and its aliases (lower case), for matching text."""
        row = self.carried.get(series.lower()) or self.not_carried.get(series.lower()) or {}
        return [series.lower()] + [str(a).lower() for a in row.get("aliases", []) if str(a).strip()]

    def is_carried(self, series: str) -> bool:
        key = series.lower()
        return key in self.carried or (key not in self.not_carried and key in self.by_series)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ----------------------------------------------------------------------------------------- the check
def check_answer(facts: StoreFacts, message: str, response: Any) -> FactReport:
    """All violations in ``response.answer`` and ``response.cards`` (``message`` is the customer's)."""
    answer = response.answer
    report = FactReport()
    add = report.violations.append
    named = named_products(facts, answer)
    cards = list(response.cards)
    in_play = {a for spans in named for a in spans[2]} | {c.asin for c in cards} | set(ASIN.findall(answer))
    in_play |= {a for s in _series_in(facts, answer) for a in facts.by_series.get(s, [])}

    for asin in dict.fromkeys(ASIN.findall(answer)):
        if asin not in facts.products:
            add(Violation("asin", asin, "no product with this ASIN in the catalog"))
    says_not_found = any(p in answer.lower() for p in NOT_FOUND)
    for order_id in dict.fromkeys(m.group(0).upper() for m in ORDER_ID.finditer(answer) if not _is_example(answer, m)):
        if order_id not in message.upper():
            add(Violation("order_id", order_id, "the customer never gave this order id"))
        elif order_id not in facts.orders and not says_not_found:
            add(Violation("order_id", order_id, "no such order, yet the answer does not say so"))

    allowed_prices = {_money(facts.products[a].get("price", -1)) for a in in_play if a in facts.products}
    for value in dict.fromkeys(_prices(answer)):
        if _money(value) not in allowed_prices | facts.policy_prices:
            add(Violation("price", f"${value}", "not the catalog price of a product named, nor a policy figure"))

    for iso in dict.fromkeys(_dates(answer)):
        if iso not in facts.known_dates and iso not in facts.policy_dates:
            add(Violation("date", iso, "not a release date, an order date or a date in a policy"))

    product_text = " ".join(
        f"{facts.products[a].get('description', '')} {facts.products[a].get('review_summary', '')}" for a in in_play
        if a in facts.products
    )
    allowed_figures = facts.policy_figures | set(_figure_keys(product_text))
    loose = {_loose(k) for k in allowed_figures}
    for key, shown in _figures(answer):
        if key not in allowed_figures and _loose(key) not in loose:
            add(Violation("policy_figure", shown, "this figure appears in no policy"))

    for sentence in SENTENCE_SPLIT.split(" ".join(answer.split())):
        quoted = facts.policy_quotes.get(_masked(sentence))
        if quoted is not None and tuple(NUMBER.findall(sentence)) not in quoted:
            # a policy sentence quoted with a figure changed: the set checks above pass it when the new figure
            # happens to be some product's price ("International shipping is a flat $11.99 per order")
            add(Violation("policy_figure", sentence[:120], "a quoted policy sentence with a changed figure"))

    report.violations.extend(_stock_claims(facts, answer, named))
    report.violations.extend(_card_facts(facts, cards))
    report.violations.extend(_not_carried(facts, answer, cards))
    return report


def named_products(facts: StoreFacts, answer: str) -> list[tuple[int, int, list[str]]]:
    """(start, end, candidate asins) for each catalog title (or "series vol N") named in the answer.

    Longer names win: "X, Vol. 2 (Digital Edition)" is not also read as "X, Vol. 2"."""
    low = answer.lower()
    found: list[tuple[int, int, list[str]]] = []
    for title, asins in facts.by_title.items():
        if title and title in low:
            for m in re.finditer(re.escape(title) + r"(?![\w])", low):
                found.append((m.start(), m.end(), asins))
    for series in _series_in(facts, answer):
        pattern = re.escape(series) + r",?\s+(?:vol(?:ume)?\.?|#)\s*(\d+)\b"
        for m in re.finditer(pattern, low):
            vol = int(m.group(1))
            asins = [a for a in facts.by_series[series] if facts.products[a].get("volume") == vol]
            if asins:
                found.append((m.start(), m.end(), asins))
    kept: list[tuple[int, int, list[str]]] = []
    for span in sorted(found, key=lambda s: (-(s[1] - s[0]), s[0])):
        if all(span[1] <= k[0] or span[0] >= k[1] for k in kept):
            kept.append(span)
    return sorted(kept)


def _series_in(facts: StoreFacts, answer: str) -> list[str]:
    low = answer.lower()
    return [s for s in facts.by_series if s and s in low and name_pattern([s]).search(low)]


def name_pattern(names: Sequence[str]) -> re.Pattern:
    """Any of ``names`` as a whole word (Latin names) or anywhere (Japanese script has no word breaks)."""
    parts = [rf"(?<!\w){re.escape(n)}(?!\w)" if n.isascii() else re.escape(n) for n in names if n]
    return re.compile("|".join(parts) or r"(?!)", re.IGNORECASE)


def _stock_claims(facts: StoreFacts, answer: str, named: list[tuple[int, int, list[str]]]) -> Iterator[Violation]:
    for i, (_, end, asins) in enumerate(named):
        stop = named[i + 1][0] if i + 1 < len(named) else len(answer)
        sentence_end = SENTENCE_END.search(answer, end)
        window = answer[end : min(stop, sentence_end.end() if sentence_end else stop, end + 160)]
        if OUT_OF_STOCK.search(window):
            claim = False
        elif IN_STOCK.search(window):
            claim = True
        else:
            continue
        stocks = [int(facts.products[a].get("stock", 0) or 0) > 0 for a in asins]
        if claim not in stocks:
            title = facts.products[asins[0]].get("title", asins[0])
            said = "in stock" if claim else "out of stock"
            yield Violation("stock", f"{title}: {said}", f"catalog stock is {facts.products[asins[0]].get('stock')}")


def _card_facts(facts: StoreFacts, cards: Sequence[Any]) -> Iterator[Violation]:
    for card in cards:
        product = facts.products.get(card.asin)
        if product is None:
            yield Violation("asin", card.asin, "a card names an ASIN the catalog does not have")
            continue
        if _money(card.price) != _money(product.get("price", -1)):
            yield Violation("card_price", f"{card.asin}: {card.price:.2f}", f"catalog price is {product.get('price')}")
        if bool(card.in_stock) != (int(product.get("stock", 0) or 0) > 0):
            yield Violation("card_stock", f"{card.asin}: in_stock={card.in_stock}", f"catalog stock is {product.get('stock')}")


def _not_carried(facts: StoreFacts, answer: str, cards: Sequence[Any]) -> Iterator[Violation]:
    sentences = SENTENCE_SPLIT.split(straight_quotes(answer))
    for series in facts.not_carried:
        pattern = name_pattern(facts.series_names(series))
        for sentence in sentences:
            low = sentence.lower()
            if pattern.search(sentence) and AVAILABILITY.search(sentence) and not any(d in low for d in DECLINE):
                yield Violation("not_carried", facts.not_carried[series]["series"], f"stated as available: {sentence.strip()!r}")
                break
        for card in cards:
            if pattern.search(straight_quotes(card.title)):
                yield Violation("not_carried", facts.not_carried[series]["series"], f"a card offers it: {card.title!r}")


# ----------------------------------------------------------------------------------------- extractors
def straight_quotes(text: str) -> str:
    return text.translate(_QUOTES)


_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def _is_example(text: str, match: re.Match) -> bool:
    """"It looks like MA-12345678": a format example, not a claim about an order."""
    return bool(EXAMPLE_CUE.search(text[max(0, match.start() - 20) : match.start()]))


def _masked(sentence: str) -> str:
    return NUMBER.sub("#", " ".join(straight_quotes(sentence).lower().split()))


def _money(value: Any) -> int:
    """Cents, so 12.9 == 12.90."""
    return round(float(str(value).replace(",", "")) * 100)


def _prices(text: str) -> Iterator[str]:
    for m in PRICE.finditer(text):
        yield m.group(1) or m.group(2)


def _dates(text: str) -> Iterator[str]:
    for m in DATE_ISO.finditer(text):
        yield m.group(0)
    for m in DATE_MDY.finditer(text):
        yield _iso(m.group(3), m.group(1), m.group(2))
    for m in DATE_DMY.finditer(text):
        yield _iso(m.group(3), m.group(2), m.group(1))


def _iso(year: str, month: str, day: str) -> str:
    return f"{int(year):04d}-{MONTHS.index(month[:3].lower()) + 1:02d}-{int(day):02d}"


def _figures(text: str) -> Iterator[tuple[tuple[str, ...], str]]:
    """(canonical key, text as shown) for each policy-style figure: durations, percentages, counts, clock times."""
    for m in DURATION.finditer(text):
        unit = " ".join(m.group(3).lower().split()).rstrip("s")
        number = m.group(1) + (f"-{m.group(2)}" if m.group(2) else "")
        yield ("duration", number, unit), m.group(0)
    for m in PERCENT.finditer(text):
        yield ("percent", f"{float(m.group(1)):g}"), m.group(0)
    for m in COUNT.finditer(text):
        yield ("count", m.group(1), m.group(2).lower()), m.group(0)
    for m in CLOCK.finditer(text):
        hour = int(m.group(1)) % 12 + (12 if m.group(3).lower() == "p" else 0)
        yield ("clock", f"{hour:02d}:{m.group(2) or '00'}"), m.group(0)


def _figure_keys(text: str) -> Iterable[tuple[str, ...]]:
    return (key for key, _ in _figures(text))


def _loose(key: tuple[str, ...]) -> tuple[str, ...]:
    """"5-7 days" matches a policy's "5-7 business days"."""
    if key[0] != "duration":
        return key
    return key[:2] + (key[2].split()[-1],)
