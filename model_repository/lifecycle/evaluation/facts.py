"""Factual correctness: every claim in an answer must be true of the row it is said of.

:class:`StoreFacts` loads the data directory (``catalog.jsonl``, ``policies.jsonl``, ``orders.jsonl`` and,
when present, ``series.jsonl``). :func:`check_answer` reads one answer (and its cards) sentence by sentence and
returns one :class:`Violation` per claim the data does not support.

A claim is tied to its row, not to a pool of values:

* **mentions** are found first in each sentence: products (an ASIN, an exact catalog title, or
  "<series> vol. N" resolved to an edition by the words after it -- "(Digital Edition)", "digital", "Japanese",
  "omnibus"; English print when none), series (name or alias), and orders (``MA-NNNNNNNN``);
* each **claim** is attached to the nearest mention of a kind it can be said of, in its sentence (a preceding
  mention wins a tie, as in ``server/guardrails/price.py``); a sentence with no such mention takes the single one
  of the sentence before it in the same paragraph ("Order MA-1 has shipped. Estimated delivery: ...");
* a **price** attached to a product must be that product's price; an amount after "over", "orders of", "fee"...
  or in a sentence with no product is a policy figure;
* a **date** attached to an order must be its order or delivery date, attached to a product its release date;
* an **order status** ("has shipped", "was delivered", "out for delivery", "being prepared", "cancelled", each
  negation-aware: "hasn't shipped yet", "won't ship"), **carrier** and **tracking number** must be the order's;
* a **stock** statement ("in stock", "available"; negated by "not", "n't", "no longer", or "out of stock",
  "sold out", "unavailable") must match the product's stock;
* an **author or publisher** named ("by X", "published by X", "author is X", or any name the store knows) must
  be the series' author / the product's publisher; "N volumes" of a series its English volume count; "rated X"
  the product's age rating;
* a **policy figure** (durations, percentages, counts, clock times, amounts, "December 15") must be a figure
  of the policy *section* the sentence is about: the section whose sentences share the most rare words with it
  (idf-weighted; sections within 75% of the best one also count), not any section's;
* with the record's entity (``expected``), the products the answer states facts of must include the product
  (or series) asked about: a wrong title named is caught even when its price happens to match.

A claim with nothing to attach to falls back to the old pooled check (the answer's products, any policy), so
an answer that states a figure about nothing in particular is still checked against something.

Formats are normalised: prices ``$9.99``, ``US$9.99``, ``9.99 USD``, ``9.99 dollars``, ``9 dollars 99``,
``9 dollars and 99 cents``; dates ``2021-03-05``, ``March 5, 2021``, ``Mar. 5th 2021``, ``5 Mar 2021``,
``3/5/2021`` (US month/day/year).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

#: Violations that mean the answer invented something (the "fabricated" count; the gate wants 0).
FABRICATED_KINDS = frozenset({"asin", "order_id", "price", "date", "policy_figure"})
#: Every kind :func:`check_answer` can return.
KINDS = (
    "asin", "order_id", "price", "date", "policy_figure", "stock", "order_status", "carrier", "tracking", "author",
    "publisher", "volumes", "age_rating", "policy_statement", "wrong_product", "card_price", "card_stock", "not_carried",
)

ASIN = re.compile(r"\bB0[A-Z0-9]{8}\b")
ORDER_ID = re.compile(r"\bMA-\d{8}\b", re.IGNORECASE)
_AMOUNT = r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?"
PRICE = re.compile(
    rf"(?:US\s?\$|\$)\s?(?P<a1>{_AMOUNT})(?![\d.]*\d)"
    rf"|(?<![\w.$])(?P<d>\d+)\s?(?:dollars?|bucks)\s*(?:and\s+)?(?P<c>\d{{1,2}})(?:\s*cents?)?\b"
    rf"|(?<![\w.$])(?P<a2>{_AMOUNT})\s?(?:USD|US dollars?|dollars?|bucks)\b",
    re.IGNORECASE,
)
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    r"|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
DATE_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
DATE_MDY = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.IGNORECASE)
DATE_DMY = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+(\d{{4}})\b", re.IGNORECASE)
DATE_NUM = re.compile(r"(?<![\d/.-])(\d{1,2})/(\d{1,2})/(\d{4})\b")  # US month/day/year
DATE_NO_YEAR = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?!,?\s+\d{{4}})(?!\s*(?:-|to)\s*\d)", re.IGNORECASE)
DURATION = re.compile(
    r"\b(\d+)(?:\s*(?:-|–|to)\s*(\d+))?[\s-]*((?:business\s+|calendar\s+|working\s+)?(?:day|hour|week|month|year)s?)\b",
    re.IGNORECASE,
)
PERCENT = re.compile(r"\b(\d+(?:\.\d+)?)\s?(?:%|percent\b)", re.IGNORECASE)
COUNT = re.compile(r"\b(\d+)\s+(countries|states|regions|copies|points|payments)\b", re.IGNORECASE)
CLOCK = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s?m\b\.?", re.IGNORECASE)
VOLUMES = re.compile(r"(?<![\w.-])(\d+)\s+vol(?:ume)?s\b", re.IGNORECASE)
AGE_RATING = re.compile(r"\b(?:rated|age rating(?: is| of)?:?)\s+(All Ages|Older Teen|Teen Plus|Teen|Mature)\b", re.IGNORECASE)
TRACKING = re.compile(r"\b(1Z[0-9A-Z]{10,18}|\d{10,22})\b")
CARRIER = re.compile(r"\b(USPS|UPS|FedEx|DHL|OnTrac)\b")
SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
# "Vol. 3" / "(Vols. 1-3)" / "no." / "vs." / "p.m." are no sentence ends
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])(?<!vol\.)(?<!vols\.)(?<!no\.)(?<!vs\.)(?<![ap]\.m\.)(?<!\b[ap]\.)\s+", re.IGNORECASE)
_UNIT_BREAK = re.compile(r"(?<=[.!?])(?<!vol\.)(?<!vols\.)(?<!no\.)(?<!vs\.)(?<![ap]\.m\.)\s+(?=[A-Z0-9\"'(\u3040-\u9fff])|\n+", re.IGNORECASE)
OUT_OF_STOCK = re.compile(r"out of stock|sold out|not in stock|isn't in stock|is not in stock|no longer in stock", re.I)
IN_STOCK = re.compile(r"\bin stock\b", re.I)
#: A stock statement; its polarity comes from the phrase ("sold out") or a negator just before it ("not in stock").
STOCK_PHRASE = re.compile(
    r"(?P<neg>out of stock|sold out|unavailable|out of print|no copies left|none left)"
    r"|(?P<pos>in stock|available|on the shelf|have copies|copies left)",
    re.IGNORECASE,
)
#: A negated statement ("cannot be returned", "never expire", "don't accept", "no fee", "nothing ships").
NEGATION = re.compile(r"\b(?:not|never|no|cannot|nothing|none|without)\b|n't\b", re.IGNORECASE)
#: The word a negation denies ("cannot be *returned*", "never *expire*", "do not *accept*", "no *fee*");
#: "is not the item you ordered" denies no word of its own (an article follows).
NEGATED_WORD = re.compile(
    r"(?:\b(?:not|never|no|cannot)|n't)\s+(?:(?:be|been|being|yet|always|currently|ever|do|does|to|get|gets|need|have)\s+)*([a-z]+)", re.IGNORECASE)
NEGATOR = re.compile(r"(?:\bnot|n't|\bno longer|\bnever|\bno)\s+(?:\w+\s+){0,2}$", re.IGNORECASE)
#: Order statuses a phrase asserts (when not negated) -- "shipped" is true of every order past the warehouse.
STATUS_PHRASES: tuple[tuple[re.Pattern, frozenset[str]], ...] = (
    (re.compile(r"out for delivery", re.I), frozenset({"out_for_delivery"})),
    (re.compile(r"\bdelivered\b", re.I), frozenset({"delivered"})),
    (re.compile(r"\b(?:shipped|on (?:its|the) way|in transit|dispatched|ship)\b", re.I),
     frozenset({"shipped", "out_for_delivery", "delivered"})),
    (re.compile(r"\b(?:being prepared|processing|preparing|packed)\b", re.I), frozenset({"processing"})),
    (re.compile(r"\bcancell?ed\b", re.I), frozenset({"cancelled"})),
)
ALL_STATUSES = frozenset({"processing", "shipped", "out_for_delivery", "delivered", "cancelled"})
AVAILABILITY = re.compile(
    r"\$\s?\d|\bin stock\b|\bavailable\b|\bwe (?:do )?(?:have|carry|stock|sell)\b|\byou can (?:buy|order|get)\b|\bfor sale\b", re.I
)
DECLINE = (
    "don't carry", "do not carry", "not carry", "doesn't carry", "isn't in our catalog", "not in our catalog",
    "don't stock", "we don't have", "not available", "unavailable", "don't sell", "do not sell", "not something we",
)
NOT_FOUND = ("couldn't find", "could not find", "can't find", "cannot find", "not found", "no order", "doesn't match")
#: Any number (with its $ / %), masked to compare a quoted policy sentence with its source whatever the figures.
NUMBER = re.compile(r"\$?\d[\d,]*(?:\.\d+)?%?")
EXAMPLE_CUE = re.compile(r"(?:looks like|e\.g\.|for example|such as|format|like)\W{0,3}$", re.IGNORECASE)
#: An amount that is a threshold, fee or discount, not the price of the product next to it.
_NOT_PRODUCT_PRICE_BEFORE = re.compile(
    r"(?:over|above|under|below|save|saving|savings of|orders? of|spend|spending|minimum|min\.?|at least|(?:a )?flat(?: rate of)?|"
    r"less than|more than|worth|credit|coupon|gift card|fee|shipping(?: costs?| is)?|up to|threshold of)\s*$",
    re.IGNORECASE,
)
_NOT_PRODUCT_PRICE_AFTER = re.compile(
    r"^\s*(?:off|discount|shipping|minimum|or more|and up|\+|(?:return )?(?:label )?fees?\b|(?:return )?label\b|per (?:order|month|year)"
    r"|free shipping|threshold)",
    re.IGNORECASE,
)
#: "by <Name>", "author is <Name>": a person or company named as a series' author / publisher.
NAME_CUE = re.compile(
    r"(?:\b(?:written|drawn|created|illustrated|published|authored)\s+by|(?<![\w-])by|\bauthor(?:\s+is|:)?|\bmangaka(?:\s+is|:)?"
    r"|\bpublisher(?:\s+is|:)?|\bfrom the (?:mangaka|author))\s+"
    r"(?P<name>(?:[A-Z][\w'’.-]*|[A-Z]\.)(?:\s+(?:[A-Z][\w'’.-]*|[A-Z]\.|&|x|and(?=\s+[A-Z])))*)"
)
_NOT_NAMES = frozenset(
    "usps ups fedex dhl ontrac monday tuesday wednesday thursday friday saturday sunday january february march april may june "
    "july august september october november december eastern christmas manga club premium mangaassist the a an our your you we i "
    "visa mastercard paypal afterpay apple google us vol vols volume chat email phone standard expedited overnight".split()
)
_EDITION_AFTER = re.compile(
    r"^[\s,:]*(?:\((?P<paren>[^)]{1,40})\)|(?P<word>digital edition|digital|e-?book|kindle|paperback|print|omnibus|box set"
    r"|(?:in )?(?:english|japanese|french|german|italian|spanish|portuguese)(?: edition)?))",
    re.IGNORECASE,
)
_LANGUAGES = ("english", "japanese", "french", "german", "italian", "spanish", "portuguese")
_WORD = re.compile(r"[a-z]+")
_STOPWORDS = frozenset(
    "a an and are as at be been but by can do does for from get gets has have how i if in into is it its it's of on once "
    "or our so that the their them then there they this to up we what when where which while will with you your yours "
    "any all each every other another may more most no not only per same than very also after before just".split()
)


@dataclass(frozen=True)
class Violation:
    kind: str  # one of KINDS
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
        self._names: dict[str, list[str]] = {}
        self._patterns: dict[str, re.Pattern] = {}
        self._figs: dict[str, set[tuple[str, ...]]] = {}
        for asin, p in self.products.items():
            self.by_title.setdefault(str(p.get("title", "")).lower(), []).append(asin)
            self.by_series.setdefault(str(p.get("series", "")).lower(), []).append(asin)
        policy_text = " ".join(str(p.get("text", "")) for p in self.policies)
        self.policy_prices = {_money(m) for m in _prices(policy_text)}
        self.policy_dates = set(_dates(policy_text))
        self.policy_figures = set(_figure_keys(policy_text))
        #: masked policy sentence -> the figures it states (a sentence may occur in several sections)
        self.policy_quotes: dict[str, set[tuple[str, ...]]] = {}
        #: policy_id -> the figures its text states (durations, amounts, dates...) and its sentences' words
        self.section_figures: dict[str, set[tuple[str, ...]]] = {}
        self.section_sentences: list[tuple[str, frozenset[str]]] = []
        #: (policy_id, words, negated words, negated at all) for each policy sentence and each of its ";" clauses
        self.section_clauses: list[tuple[str, frozenset[str], frozenset[str], bool]] = []
        for p in self.policies:
            pid = str(p.get("policy_id", ""))
            text = " ".join(str(p.get("text", "")).split())
            self.section_figures.setdefault(pid, set()).update(_policy_keys(text))
            for sentence in SENTENCE_SPLIT.split(text):
                self.section_sentences.append((pid, frozenset(_content_words(sentence))))
                for clause in dict.fromkeys([sentence, *sentence.split(";")]):
                    words = frozenset(_content_words(clause))
                    if len(words) >= 3:
                        self.section_clauses.append((pid, words, _negated_words(clause), bool(NEGATION.search(clause))))
                if NUMBER.search(sentence):
                    self.policy_quotes.setdefault(_masked(sentence), set()).add(tuple(NUMBER.findall(sentence)))
        section_words: dict[str, set[str]] = {}
        for pid, ws in self.section_sentences:
            section_words.setdefault(pid, set()).update(ws)
        df = Counter(w for ws in section_words.values() for w in ws)
        n = max(1, len(self.section_figures))
        self.idf = {w: math.log((n + 1) / (c + 0.5)) for w, c in df.items()}
        self.known_dates = {str(p.get("release_date", "")) for p in self.products.values()}
        for o in self.orders.values():
            self.known_dates |= {str(o.get("placed_at", "")), str(o.get("eta", ""))}
        self.known_dates.discard("")
        # people and companies: series -> author(s), series -> publishers; every name the store knows
        self.series_authors: dict[str, set[str]] = {}
        self.series_publishers: dict[str, set[str]] = {}
        for p in self.products.values():
            s = str(p.get("series", "")).lower()
            if p.get("author"):
                self.series_authors.setdefault(s, set()).add(str(p["author"]))
            if p.get("publisher"):
                self.series_publishers.setdefault(s, set()).add(str(p["publisher"]))
        for key, row in {**self.carried, **self.not_carried}.items():
            if row.get("author"):
                self.series_authors.setdefault(key, set()).add(str(row["author"]))
        self.authors = {a for v in self.series_authors.values() for a in v}
        self.publishers = {a for v in self.series_publishers.values() for a in v}
        names = sorted(self.authors | self.publishers, key=len, reverse=True)
        self.known_name = re.compile("|".join(rf"(?<!\w){re.escape(n)}(?!\w)" for n in names) or r"(?!)")
        self.volume_count = Counter(
            str(p.get("series", "")).lower() for p in self.products.values()
            if p.get("format") == "tankobon" and p.get("language") == "English")
        self.series_alias: dict[str, str] = {}  # lower-cased name or alias -> lower-cased series
        for key in self.by_series:
            for n in self.series_names(key):
                self.series_alias.setdefault(n, key)

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
        key = series.lower()
        cached = self._names.get(key)
        if cached is None:
            row = self.carried.get(key) or self.not_carried.get(key) or {}
            cached = self._names[key] = [key] + [str(a).lower() for a in row.get("aliases", []) if str(a).strip()]
        return list(cached)

    def series_pattern(self, series: str) -> re.Pattern:
        key = series.lower()
        if key not in self._patterns:
            self._patterns[key] = name_pattern(self.series_names(key))
        return self._patterns[key]

    def product_figures(self, asin: str) -> set[tuple[str, ...]]:
        """The figures of a product's description and review summary (a duration it states is no policy's)."""
        if asin not in self._figs:
            p = self.products.get(asin, {})
            self._figs[asin] = set(_figure_keys(f"{p.get('description', '')} {p.get('review_summary', '')}"))
        return self._figs[asin]

    def is_carried(self, series: str) -> bool:
        key = series.lower()
        return key in self.carried or (key not in self.not_carried and key in self.by_series)

    def policy_contradiction(self, clause: str, sections: Sequence[str]) -> str | None:
        """The word whose negation ``clause`` flips relative to the policy sentence (of ``sections``) it restates:
        the policy denies a word the clause states with no negation at all ("Digital editions can be returned"
        against "... cannot be returned"), or the clause denies a word the policy states unnegated ("We do not ship
        with USPS" against "We ship with USPS"). None when it agrees or restates no policy sentence (the best
        one must hold 60% of the clause's idf-weighted words)."""
        words = set(_content_words(clause))
        if len(words) < 3:
            return None
        mass = sum(self.idf.get(w, 0.0) for w in words)
        best, best_score = None, 0.0
        for pid, ws, negated, any_neg in self.section_clauses:
            if pid not in sections:
                continue
            score = sum(self.idf.get(w, 0.0) for w in words & ws) / (mass or 1.0)
            if score > best_score:
                best, best_score = (ws, negated, any_neg), score
        if best is None or best_score < 0.6:
            return None
        ws, negated, any_neg = best
        low = straight_quotes(clause).lower()
        for w in sorted(negated & words - _negated_words(clause)):
            # the clause states w with no negation in the five words before it ("always expire", "can be combined")
            m = re.search(rf"((?:\S+\s+){{0,5}}){w}", low)
            if m and not NEGATION.search(m.group(1)):
                return f"the policy says not {w}"
        if not any_neg:
            hit = sorted(_negated_words(clause) & ws)
            if hit:
                return f"the policy says {hit[0]}, not its negation"
        return None

    def policy_sections(self, sentence: str) -> list[str]:
        """The policy sections ``sentence`` is about: the best idf-weighted word overlap with any of a section's
        sentences, and every section within 75% of it; ``[]`` when no section shares two rare-enough words."""
        words = set(_content_words(sentence))
        best: dict[str, float] = {}
        for pid, ws in self.section_sentences:
            shared = words & ws
            if len(shared) < 2:
                continue
            score = sum(self.idf.get(w, 0.0) for w in shared)
            best[pid] = max(best.get(pid, 0.0), score)
        if not best:
            return []
        top = max(best.values())
        if top < 2.0:
            return []
        return sorted(pid for pid, s in best.items() if s >= 0.75 * top)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ----------------------------------------------------------------------------------------- mentions
@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    kind: str  # product | series | order
    ids: tuple[str, ...]  # asins (product), lower-cased series (series), order id (order)


def _units(text: str, keep: Sequence[tuple[int, int]] = ()) -> list[tuple[int, str, bool]]:
    """(start, text, new_paragraph) for each sentence / line of ``text``; no break falls inside a ``keep`` span
    (a name such as "Full Swing!! Nara High")."""
    out: list[tuple[int, str, bool]] = []
    pos, new_par = 0, True
    for m in _UNIT_BREAK.finditer(text):
        if "\n" not in m.group(0) and any(a < m.start() <= b for a, b in keep):
            continue
        if text[pos : m.start()].strip():
            out.append((pos, text[pos : m.start()], new_par))
        new_par = "\n" in m.group(0)
        pos = m.end()
    if text[pos:].strip():
        out.append((pos, text[pos:], new_par))
    return out


def _mentions(facts: StoreFacts, text: str, series_here: Sequence[str], cards: Sequence[Any] = ()) -> list[Mention]:
    low = text.lower()
    found: list[Mention] = []
    for m in ASIN.finditer(text):
        if m.group(0) in facts.products:
            found.append(Mention(m.start(), m.end(), "product", (m.group(0),)))
    titles = {str(facts.products[a].get("title", "")).lower() for s in series_here for a in facts.by_series.get(s, ())}
    for title in titles:
        asins = facts.by_title.get(title, [])
        if title and title in low:
            for m in re.finditer(re.escape(title) + r"(?![\w])", low):
                found.append(Mention(m.start(), m.end(), "product", tuple(asins)))
    for series in series_here:
        for name in facts.series_names(series):
            if not name.isascii() and name not in low:
                continue
            head = rf"(?<!\w){re.escape(name)}" if name.isascii() else re.escape(name)
            for m in re.finditer(head + r"(?P<omni>\s+omnibus)?,?\s+(?:vol(?:ume)?\.?|#|no\.?)\s*0*(\d+)\b", low):
                asins = _edition(facts, series, int(m.group(2)), bool(m.group("omni")), low[m.end() : m.end() + 60])
                if asins:
                    found.append(Mention(m.start(), m.end(), "product", asins))
            for m in re.finditer(head + r"(?:\s+complete)?\s+box(?:ed)?\s+set", low):
                asins = tuple(a for a in facts.by_series.get(series, []) if facts.products[a].get("format") == "box_set")
                if asins:
                    found.append(Mention(m.start(), m.end(), "product", asins))
            for m in re.finditer(head + (r"(?!\w)" if name.isascii() else ""), low):
                found.append(Mention(m.start(), m.end(), "series", (series,)))
    for m in ORDER_ID.finditer(text):
        if not _is_example(text, m):
            found.append(Mention(m.start(), m.end(), "order", (m.group(0).upper(),)))
    # longer spans win ("X, Vol. 2 (Digital Edition)" is not also "X, Vol. 2"); a series name inside a title is the title
    kept: list[Mention] = []
    rank = {"product": 0, "order": 0, "series": 1}
    for mention in sorted(found, key=lambda s: (rank[s.kind], -(s.end - s.start), s.start)):
        if all(mention.end <= k.start or mention.start >= k.end for k in kept):
            kept.append(mention)
    return sorted(kept, key=lambda k: k.start)


def _edition(facts: StoreFacts, series: str, volume: int, omnibus: bool, after: str) -> tuple[str, ...]:
    """The products of "<series> vol. N": the edition the words after it name, else English print."""
    rows = [a for a in facts.by_series.get(series, []) if facts.products[a].get("volume") == volume]
    fmt, language = ("omnibus" if omnibus else None), None
    m = _EDITION_AFTER.match(after)
    words = (m.group("paren") or m.group("word") or "").lower() if m else ""
    if "digital" in words or "book" in words or "kindle" in words:
        fmt = "digital"
    elif "omnibus" in words:
        fmt = "omnibus"
    elif "paperback" in words or "print" in words or "tankobon" in words:
        fmt = "tankobon"
    for lang in _LANGUAGES:
        if lang in words:
            language = lang.capitalize()
    if words.startswith("vols"):  # "Omnibus, Vol. 1 (Vols. 1-3)"
        fmt = fmt or "omnibus"
    fmt = fmt or "tankobon"
    language = language or "English"
    exact = tuple(a for a in rows if facts.products[a].get("format") == fmt and facts.products[a].get("language") == language)
    return exact or tuple(rows)


def named_products(facts: StoreFacts, answer: str) -> list[tuple[int, int, list[str]]]:
    """(start, end, candidate asins) for each catalog title (or "series vol N") named in the answer.

    Longer names win: "X, Vol. 2 (Digital Edition)" is not also read as "X, Vol. 2"."""
    series = _series_in(facts, answer)
    return [(m.start, m.end, list(m.ids)) for m in _mentions(facts, answer, series) if m.kind == "product"]


def _series_in(facts: StoreFacts, answer: str) -> list[str]:
    low = answer.lower()
    out = []
    for s in facts.by_series:
        if s and any(n in low for n in facts.series_names(s)) and facts.series_pattern(s).search(low):
            out.append(s)
    return out


def name_pattern(names: Sequence[str]) -> re.Pattern:
    """Any of ``names`` as a whole word (Latin names) or anywhere (Japanese script has no word breaks)."""
    parts = [rf"(?<!\w){re.escape(n)}(?!\w)" if n.isascii() else re.escape(n) for n in names if n]
    return re.compile("|".join(parts) or r"(?!)", re.IGNORECASE)


def _attach(start: int, end: int, mentions: Sequence[Mention], kinds: Iterable[str], text: str = "") -> Mention | None:
    """The mention a claim at ``start:end`` is said of: the nearest preceding one of ``kinds`` in the same clause
    (no ";" or newline between), else the nearest following one in the same clause, else the nearest preceding."""
    kinds = set(kinds)
    before = [m for m in mentions if m.kind in kinds and m.end <= start]
    after = [m for m in mentions if m.kind in kinds and m.start >= end]
    same = lambda a, b: not _CLAUSE_BREAK.search(text[a:b]) if text else True
    near_before = max(before, key=lambda m: m.end, default=None)
    near_after = min(after, key=lambda m: m.start, default=None)
    if near_before is not None and same(near_before.end, start):
        if near_after is None or not same(end, near_after.start) or start - near_before.end <= near_after.start - end + 5:
            return near_before
        return near_after
    if near_after is not None and same(end, near_after.start):
        return near_after
    return near_before


_CLAUSE_BREAK = re.compile(r"[;\n]|\bAlso:")


# ----------------------------------------------------------------------------------------- the check
def check_answer(facts: StoreFacts, message: str, response: Any, expected: Mapping[str, Any] | None = None) -> FactReport:
    """All violations in ``response.answer`` and ``response.cards`` (``message`` is the customer's).

    ``expected``: the golden record's entity (``series``, ``asin``, ``genre``...); when given, an answer that states
    facts only of other products than the one asked about is a ``wrong_product`` violation."""
    answer = response.answer
    report = FactReport()
    add = report.violations.append
    cards = list(response.cards)
    series_here = _series_in(facts, answer)
    in_play = {c.asin for c in cards} | set(ASIN.findall(answer))
    in_play |= {a for s in series_here for a in facts.by_series.get(s, [])}

    for asin in dict.fromkeys(ASIN.findall(answer)):
        if asin not in facts.products:
            add(Violation("asin", asin, "no product with this ASIN in the catalog"))
    says_not_found = any(p in answer.lower() for p in NOT_FOUND)
    for order_id in dict.fromkeys(m.group(0).upper() for m in ORDER_ID.finditer(answer) if not _is_example(answer, m)):
        if order_id not in message.upper():
            add(Violation("order_id", order_id, "the customer never gave this order id"))
        elif order_id not in facts.orders and not says_not_found:
            add(Violation("order_id", order_id, "no such order, yet the answer does not say so"))

    claimed: list[Mention] = []  # product / series mentions some claim was attached to
    prev: list[Mention] = []
    card_mentions = [Mention(-1, -1, "product", (c.asin,)) for c in cards if c.asin in facts.products]
    low = answer.lower()
    keep = [(m.start(), m.end()) for s in series_here for n in facts.series_names(s) if n.isascii()
            for m in re.finditer(re.escape(n), low)]
    for start, unit, new_par in _units(answer, keep):
        mentions = _mentions(facts, unit, series_here)
        carried = [] if new_par else prev
        # only the sentence before carries its mentions, and only a single one of a kind
        fallback = {k: [m for m in carried if m.kind == k] for k in ("product", "series", "order")}
        fallback = {k: v[0] for k, v in fallback.items() if len({m.ids for m in v}) == 1}
        if len(card_mentions) == 1 and "product" not in fallback and not any(m.kind == "product" for m in mentions):
            fallback["product"] = card_mentions[0]
        sections = facts.policy_sections(unit)
        ctx = _Unit(facts, unit, mentions, fallback, sections, in_play)
        for v in _unit_claims(ctx):
            add(v)
        claimed.extend(ctx.claimed)
        prev = (mentions or prev) if not new_par else mentions

    for sentence in SENTENCE_SPLIT.split(" ".join(answer.split())):
        quoted = facts.policy_quotes.get(_masked(sentence))
        if quoted is not None and tuple(NUMBER.findall(sentence)) not in quoted:
            # a policy sentence quoted with a figure changed: the set checks above pass it when the new figure
            # happens to be some product's price ("International shipping is a flat $11.99 per order")
            add(Violation("policy_figure", sentence[:120], "a quoted policy sentence with a changed figure"))

    if expected:
        report.violations.extend(_wrong_product(facts, claimed, expected))
    report.violations.extend(_card_facts(facts, cards))
    report.violations.extend(_not_carried(facts, answer, cards))
    # one violation per (kind, value): a figure repeated in two sentences is one wrong claim
    report.violations[:] = list({(v.kind, v.value): v for v in report.violations}.values())
    return report


@dataclass
class _Unit:
    facts: StoreFacts
    text: str
    mentions: list[Mention]
    fallback: dict[str, Mention]
    sections: list[str]
    in_play: set[str]
    claimed: list[Mention] = field(default_factory=list)

    def owner(self, start: int, end: int, kinds: Sequence[str]) -> Mention | None:
        m = _attach(start, end, self.mentions, kinds, self.text)
        if m is None:
            m = next((self.fallback[k] for k in kinds if k in self.fallback), None)
        if m is not None and m.kind in ("product", "series"):
            self.claimed.append(m)
        return m


def _unit_claims(u: _Unit) -> Iterator[Violation]:
    facts, text = u.facts, u.text
    P = facts.products
    policy_spans: list[tuple[int, int]] = []

    # prices --------------------------------------------------------------------------------------------
    for m, cents in _price_claims(text):
        before, after = text[max(0, m.start() - 30) : m.start()], text[m.end() : m.end() + 20]
        is_threshold = bool(_NOT_PRODUCT_PRICE_BEFORE.search(before) or _NOT_PRODUCT_PRICE_AFTER.match(after))
        owner = None if is_threshold else _attach(m.start(), m.end(), u.mentions, ("product",), text)
        if owner is None and not is_threshold and not u.sections:
            owner = u.owner(m.start(), m.end(), ("product",))
        elif owner is not None:
            u.claimed.append(owner)
        shown = f"${cents / 100:.2f}"
        if owner is not None:
            prices = {_money(P[a].get("price", -1)) for a in owner.ids}
            if cents not in prices:
                title = P[owner.ids[0]].get("title", owner.ids[0])
                yield Violation("price", shown, f"{title} costs ${P[owner.ids[0]].get('price')}")
            continue
        policy_spans.append((m.start(), m.end()))
        if u.sections:
            allowed = {k[1] for s in u.sections for k in facts.section_figures.get(s, ()) if k[0] == "money"}
            if cents not in allowed:
                yield Violation("policy_figure", shown, f"not an amount of the policy section it is said of ({', '.join(u.sections)})")
        else:
            pool = {_money(P[a].get("price", -1)) for a in u.in_play if a in P} | facts.policy_prices
            if cents not in pool:
                yield Violation("price", shown, "not the catalog price of a product named, nor a policy figure")

    # dates ---------------------------------------------------------------------------------------------
    for m, iso in _date_claims(text):
        owner = u.owner(m.start(), m.end(), ("order", "product"))
        if owner is not None and owner.kind == "order":
            o = facts.orders.get(owner.ids[0])
            if o is not None and iso not in {str(o.get("placed_at")), str(o.get("eta"))}:
                yield Violation("date", iso, f"order {owner.ids[0]} was placed {o.get('placed_at')}, delivery {o.get('eta')}")
        elif owner is not None:
            if iso not in {str(P[a].get("release_date")) for a in owner.ids}:
                yield Violation("date", iso, f"{P[owner.ids[0]].get('title')} was released {P[owner.ids[0]].get('release_date')}")
        elif u.sections:
            if iso not in facts.policy_dates and ("date", iso[5:]) not in {k for s in u.sections for k in facts.section_figures[s]}:
                yield Violation("date", iso, "not a date of the policy section it is said of")
        elif iso not in facts.known_dates and iso not in facts.policy_dates:
            yield Violation("date", iso, "not a release date, an order date or a date in a policy")

    # orders: status, carrier, tracking -----------------------------------------------------------------
    order_mentions = [m for m in u.mentions if m.kind == "order"] or ([u.fallback["order"]] if "order" in u.fallback else [])
    if order_mentions and not (u.sections and not any(m.kind == "order" for m in u.mentions)):
        for start, end, said, negated in _status_claims(text):
            owner = u.owner(start, end, ("order",))
            o = facts.orders.get(owner.ids[0]) if owner else None
            if o is None:
                continue
            ok = (o["status"] not in said) if negated else (o["status"] in said)
            if not ok:
                shown = ("not " if negated else "") + text[start:end]
                yield Violation("order_status", f"{owner.ids[0]}: {shown}", f"the order is {o['status']}")
        for m in CARRIER.finditer(text):
            owner = u.owner(m.start(), m.end(), ("order",))
            o = facts.orders.get(owner.ids[0]) if owner else None
            if o is not None and (o.get("carrier") or "").lower() != m.group(1).lower():
                yield Violation("carrier", f"{owner.ids[0]}: {m.group(1)}", f"the order's carrier is {o.get('carrier')}")
        for m in TRACKING.finditer(text):
            owner = u.owner(m.start(), m.end(), ("order",))
            o = facts.orders.get(owner.ids[0]) if owner else None
            if o is not None and str(o.get("tracking_number") or "") != m.group(1):
                yield Violation("tracking", f"{owner.ids[0]}: {m.group(1)}", f"the order's tracking number is {o.get('tracking_number')}")

    # stock ---------------------------------------------------------------------------------------------
    for m in STOCK_PHRASE.finditer(text):
        negated = bool(m.group("neg")) != bool(NEGATOR.search(text[max(0, m.start() - 30) : m.start()]))
        owner = _attach(m.start(), m.end(), u.mentions, ("product",), text)
        if owner is None and m.group(0).lower() == "available":
            continue  # "available" with no product named is about anything (a policy, a format)
        if owner is None:
            if u.sections and not any(k.kind == "product" for k in u.mentions):
                continue
            owner = u.owner(m.start(), m.end(), ("product",))
        else:
            u.claimed.append(owner)
        if owner is None:
            continue
        stocks = {int(P[a].get("stock", 0) or 0) > 0 for a in owner.ids}
        if (not negated) not in stocks:
            title = P[owner.ids[0]].get("title", owner.ids[0])
            said = "out of stock" if negated else "in stock"
            yield Violation("stock", f"{title}: {said}", f"catalog stock is {P[owner.ids[0]].get('stock')}")

    # authors and publishers ----------------------------------------------------------------------------
    named: list[tuple[int, int, str, bool]] = [(m.start(), m.end(), m.group(0), True) for m in facts.known_name.finditer(text)]
    spans = [(m.start, m.end) for m in u.mentions]
    for m in NAME_CUE.finditer(text):
        name = _trim_name(m.group("name"))
        s = m.start("name")
        if not name or name.split()[0].lower().strip(".") in _NOT_NAMES or any(a <= s < b for a, b in spans):
            continue
        if any(a <= s < b for a, b, *_ in named) or name.lower() in facts.series_alias:
            continue
        named.append((s, s + len(name), name, False))
    for start, end, name, known in named:
        # a name the store does not know is checked only against a mention in its own sentence
        owner = u.owner(start, end, ("product", "series")) if known else _attach(start, end, u.mentions, ("product", "series"), text)
        if owner is None:
            continue
        if not known:
            u.claimed.append(owner)
        if owner is None:
            continue
        series = {str(P[a].get("series", "")).lower() for a in owner.ids} if owner.kind == "product" else set(owner.ids)
        authors = {x for s in series for x in facts.series_authors.get(s, ())}
        publishers = ({str(P[a].get("publisher")) for a in owner.ids} if owner.kind == "product"
                      else {x for s in series for x in facts.series_publishers.get(s, ())})
        if name in authors or name in publishers or any(name in a for a in authors):
            continue
        kind = "publisher" if name in facts.publishers or "publish" in text[max(0, start - 25) : start].lower() else "author"
        known = "a name the store knows for another series" if name in facts.authors | facts.publishers else "a name the store does not know"
        yield Violation(kind, name, f"{known}; {', '.join(sorted(series))} is by {', '.join(sorted(authors))}")

    # volume counts and age ratings ---------------------------------------------------------------------
    for m in VOLUMES.finditer(text):
        if text[m.end() : m.end() + 3].strip().startswith(("1", "-")) or re.match(r"\s*(?:of the same|or more|through)", text[m.end():]):
            continue
        owner = u.owner(m.start(), m.end(), ("series", "product"))
        if owner is None:
            continue
        series = {str(P[a].get("series", "")).lower() for a in owner.ids} if owner.kind == "product" else set(owner.ids)
        if not any(facts.volume_count.get(s) == int(m.group(1)) for s in series):
            yield Violation("volumes", m.group(0), f"we carry {', '.join(str(facts.volume_count.get(s)) for s in sorted(series))}")
    for m in AGE_RATING.finditer(text):
        owner = u.owner(m.start(), m.end(), ("product",))
        if owner is not None and m.group(1).lower() not in {str(P[a].get("age_rating", "")).lower() for a in owner.ids}:
            yield Violation("age_rating", m.group(1), f"rated {P[owner.ids[0]].get('age_rating')}")

    # policy statements: a clause that restates a policy clause keeps its polarity ("can be returned") -----
    if u.sections and not any(m.kind == "product" for m in u.mentions):
        # each ";" clause, and each comma part of it (an answer may join two policy sentences into one)
        for clause in text.split(";"):
            for part in dict.fromkeys([clause, *clause.split(",")]):
                why = facts.policy_contradiction(part, u.sections)
                if why is not None:
                    yield Violation("policy_statement", clause.strip()[:120], f"{why} ({', '.join(u.sections)})")
                    break

    # policy figures ------------------------------------------------------------------------------------
    here = {a for mm in u.mentions if mm.kind == "product" for a in mm.ids}
    if u.sections:
        allowed = {k for s in u.sections for k in facts.section_figures.get(s, ())}
    else:
        here |= {a for a in u.in_play if a in P}
        allowed = set(facts.policy_figures)
    for a in here:
        allowed |= facts.product_figures(a)
    loose = {_loose(k) for k in allowed}
    for key, shown in _figures(text):
        if key not in allowed and _loose(key) not in loose:
            where = f"the policy section it is said of ({', '.join(u.sections)})" if u.sections else "any policy"
            yield Violation("policy_figure", shown, f"this figure is not in {where}")


def _trim_name(name: str) -> str:
    words = name.split()
    while words and (words[-1] in ("&", "x", "and") or words[-1].lower().strip(".") in _NOT_NAMES):
        words.pop()
    return " ".join(words).rstrip(".,;:'’")


def _status_claims(text: str) -> Iterator[tuple[int, int, frozenset[str], bool]]:
    taken: list[tuple[int, int]] = []
    for pattern, statuses in STATUS_PHRASES:
        for m in pattern.finditer(text):
            if any(a <= m.start() < b for a, b in taken):
                continue
            taken.append((m.start(), m.end()))
            before = text[max(0, m.start() - 25) : m.start()]
            negated = bool(NEGATOR.search(before))
            if m.group(0).lower() == "ship" and not negated:
                continue  # "we ship with UPS": not a status
            yield m.start(), m.end(), statuses, negated


def expected_entity(facts: StoreFacts, entity: Mapping[str, Any] | None, reference: str) -> dict[str, Any] | None:
    """The part of a golden record's entity its reference answer states facts of (the ``expected`` of
    :func:`check_answer`): the ASIN only when the reference names that product, the series only when it names
    the series -- some records carry an entity their message never asks about."""
    if not entity:
        return None
    out = dict(entity)
    named = {a for *_, asins in named_products(facts, reference) for a in asins}
    if out.get("asin") not in named:
        out["asin"] = None
    series = str(out.get("series") or "").lower()
    if not series or not name_pattern(facts.series_names(series)).search(reference):
        out["series"] = None
    return out if out.get("asin") or out.get("series") else None


@dataclass(frozen=True)
class _Reply:
    answer: str
    cards: tuple = ()


def _wrong_product(facts: StoreFacts, claimed: Sequence[Mention], expected: Mapping[str, Any]) -> Iterator[Violation]:
    """The answer states facts of products, none of them the one asked about (``expected``: the record's entity)."""
    if expected.get("genre") or expected.get("carried") is False or not claimed:
        return
    asin, series = expected.get("asin"), str(expected.get("series") or "").lower()
    products = [m for m in claimed if m.kind == "product"]
    if asin and asin in facts.products and products:
        if not any(asin in m.ids for m in products):
            named = facts.products[products[0].ids[0]].get("title", products[0].ids[0])
            yield Violation("wrong_product", named, f"facts stated of {named}, not of {facts.products[asin].get('title')} (asked)")
        return
    if series and series in facts.by_series:
        said = {str(facts.products[a].get("series", "")).lower() for m in products for a in m.ids}
        said |= {s for m in claimed if m.kind == "series" for s in m.ids}
        if said and series not in said:
            yield Violation("wrong_product", ", ".join(sorted(said)), f"facts stated of another series than {series}")


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


def _price_claims(text: str) -> Iterator[tuple[re.Match, int]]:
    """(match, cents) for each USD amount, in any of the ways people write one."""
    for m in PRICE.finditer(text):
        if m.group("d") is not None:
            yield m, int(m.group("d")) * 100 + int(m.group("c"))
        else:
            yield m, _money(m.group("a1") or m.group("a2"))


def _prices(text: str) -> Iterator[str]:
    for m, cents in _price_claims(text):
        yield f"{cents / 100:.2f}"


def parse_date(text: str) -> str | None:
    """``text`` (one date in any supported format) as ISO ``YYYY-MM-DD``; None when it is none."""
    found = [iso for _, iso in _date_claims(text)]
    return found[0] if len(found) == 1 else None


def _date_claims(text: str) -> Iterator[tuple[re.Match, str]]:
    """(match, ISO date) for each full date; overlapping forms are read once."""
    taken: list[tuple[int, int]] = []
    forms = (
        (DATE_ISO, lambda m: (m.group(1), m.group(2), m.group(3))),
        (DATE_MDY, lambda m: (m.group(3), m.group(1), m.group(2))),
        (DATE_DMY, lambda m: (m.group(3), m.group(2), m.group(1))),
        (DATE_NUM, lambda m: (m.group(3), m.group(1), m.group(2))),
    )
    for pattern, parts in forms:
        for m in pattern.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            iso = _iso(*parts(m))
            if iso is not None:
                taken.append((m.start(), m.end()))
                yield m, iso


def _dates(text: str) -> Iterator[str]:
    for _, iso in _date_claims(text):
        yield iso


def _iso(year: str, month: str, day: str) -> str | None:
    mon = int(month) if month.isdigit() else MONTHS.index(month[:3].lower()) + 1
    try:
        return _dt.date(int(year), mon, int(day)).isoformat()
    except ValueError:
        return None


def _figures(text: str) -> Iterator[tuple[tuple[str, ...], str]]:
    """(canonical key, text as shown) for each policy-style figure: durations, percentages, counts, clock times,
    dates without a year."""
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
    for m in DATE_NO_YEAR.finditer(text):
        day = int(m.group(2))
        if 1 <= day <= 31:
            yield ("date", f"{MONTHS.index(m.group(1)[:3].lower()) + 1:02d}-{day:02d}"), m.group(0)


def _policy_keys(text: str) -> Iterator[tuple[str, ...]]:
    """Every figure of a policy text: :func:`_figures` and its amounts (``("money", cents)``)."""
    yield from _figure_keys(text)
    for _, cents in _price_claims(text):
        yield ("money", cents)


def _figure_keys(text: str) -> Iterable[tuple[str, ...]]:
    return (key for key, _ in _figures(text))


def _loose(key: tuple[str, ...]) -> tuple[str, ...]:
    """"5-7 days" matches a policy's "5-7 business days"."""
    if key[0] != "duration":
        return key
    return key[:2] + (key[2].split()[-1],)


def _negated_words(text: str) -> frozenset[str]:
    out = set()
    for m in NEGATED_WORD.finditer(straight_quotes(text)):
        w = m.group(1).lower()
        if w not in _STOPWORDS and len(w) >= 3:
            out.add(w[:-1] if w.endswith("s") and len(w) > 4 else w)
    return frozenset(out)


def _content_words(text: str) -> Iterator[str]:
    for w in _WORD.findall(straight_quotes(text).lower()):
        if w in _STOPWORDS or len(w) < 3:
            continue
        yield w[:-1] if w.endswith("s") and len(w) > 4 else w
