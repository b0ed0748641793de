"""The catalog + orders store: the guardrails' source of truth for product IDs and prices.

The build writes it from ``catalog.jsonl`` / ``orders.jsonl`` / ``series.jsonl`` / ``policies.jsonl`` into
an SQLite file (``model_repository/index/catalog.py``, layout in ``contracts/catalog.py``); the
service only reads it (``CatalogStore(db_path)`` opens ``mode=ro``). The product table is small (thousands
of rows) and immutable while serving, so it is loaded into memory at open: ``get_product``, ``all_asins``,
``price_of`` and ``find_products`` are dictionary lookups that never touch SQLite or take a lock and are
safe to call from any thread or directly on the event loop. Orders stay in SQLite and are read under a
lock (one shared connection, ``check_same_thread=False``).

``find_products`` resolves product mentions in free text: titles, series names and the series' aliases
(``series.jsonl``: romaji, abbreviations; Japanese-script aliases match as substrings) are matched as whole
phrases after case/punctuation normalisation, the longest phrase wins over phrases it contains
("Boruto: Naruto Next Generations" over "Naruto"), and an explicit volume ("vol 3", "volume 3",
"vol. 3", "#3", "v3", "3巻", or a number right after the name) picks that volume. ``series_names`` lists
every series name and alias with whether the store carries it (``carried: false`` rows are well-known series
the store does not sell), for entity resolution (``server/retrieval/entities.py``). When no phrase matches, an
FTS5 query (if the build's SQLite had FTS5) proposes candidates whose series name shares at least two
distinctive words with the text.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from contracts.catalog import ORDER_COLUMNS, POLICIES_FTS, PRODUCT_COLUMNS, PRODUCTS_FTS
from server.retrieval.base import Product


# Words that never make a mention on their own (fallback matching only).
_STOPWORDS = frozenset(
    "a an and the of to in on for with by is are was be do does have has my me i you your it its "
    "this that what which who how when where vol volume book no part edition set box omnibus "
    "deluxe manga series one s".split()
)
# Words that say nothing about which policy section is asked about (policy search only).
_POLICY_STOPWORDS = _STOPWORDS | frozenset(
    "also any anything can could would will should there their them they if or so just about get got im "
    "please pls thanks hi hey hello much many did am was were been being here we us our from at as "
    "want need know tell ask asking question".split()
)
# An explicit volume: "vol 3", "vol. 3", "volume 3", "v3", "#3", "book 3", "no. 3".
_VOLUME_MARKER = re.compile(
    r"(?:\bvol(?:ume)?s?\.?|\bv\.?(?=\d)|#|\bbook|\bno\.|第)\s*(\d{1,4})(?:\b|(?=\s*巻))|(\d{1,4})\s*巻", re.I
)


@dataclass(frozen=True)
class SeriesName:
    """One name customers use for a series: the series name itself or an alias."""

    name: str  # as written (an alias may be Japanese script)
    series: str  # the series it names
    carried: bool  # False: a well-known series the store does not sell
    words: tuple[str, ...]  # normalised words (empty for a Japanese-script alias: match it as a substring)


@dataclass(frozen=True)
class PolicySection:
    """One section of the store's policies (``policies.jsonl``), as the lexical policy search returns it."""

    policy_id: str
    topic: str
    title: str
    text: str


@dataclass(frozen=True)
class _Match:
    start: int  # token positions in the normalised text
    end: int
    asins: tuple[str, ...]  # products the phrase names (one for a title, the series for a series)


class CatalogStore:
    """Read-only access to products and orders in the SQLite file the build wrote
    (``model_repository.index.catalog.build_catalog``)."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.db_path = Path(db_path)
        if not self.db_path.is_file():
            raise FileNotFoundError(f"catalog store not found: {self.db_path}")
        self._conn = sqlite3.connect(
            f"file:{self.db_path.resolve()}?mode=ro", uri=True, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        rows = self._conn.execute(f"SELECT {', '.join(PRODUCT_COLUMNS)} FROM products").fetchall()
        self._products: dict[str, Product] = {r["asin"]: _product(r) for r in rows}
        self._asins = frozenset(self._products)
        self._has_fts = self._has_table(PRODUCTS_FTS)  # written only by an SQLite with FTS5
        self._has_policy_fts = self._has_table(POLICIES_FTS)
        # Phrase table for find_products: normalised title/series -> asins.
        by_series: dict[str, list[Product]] = {}
        for p in self._products.values():
            by_series.setdefault(p.series, []).append(p)
        self._phrases: dict[tuple[str, ...], tuple[str, ...]] = {}
        for series, products in by_series.items():
            key = tuple(_words(series))
            if key:
                asins = tuple(p.asin for p in sorted(products, key=_volume_order))
                self._phrases[key] = tuple(dict.fromkeys(self._phrases.get(key, ()) + asins))
        by_title: dict[tuple[str, ...], list[Product]] = {}
        for p in self._products.values():
            by_title.setdefault(tuple(_words(p.title)), []).append(p)
        for key, products in by_title.items():
            if key and key not in self._phrases:  # a series name that equals a title keeps the series
                # The named products (every format of that title) first, then their series siblings.
                named = tuple(p.asin for p in sorted(products, key=lambda p: p.asin))
                siblings = [a for p in products for a in self._phrases.get(tuple(_words(p.series)), ())]
                self._phrases[key] = tuple(dict.fromkeys(named + tuple(siblings)))
        self._series_genres: dict[str, tuple[str, ...]] = {}
        self._names = self._load_series_names(by_series)
        for n in self._names:  # aliases of carried series resolve like the series name
            if n.carried and n.words and n.words not in self._phrases and n.series in by_series:
                self._phrases[n.words] = self._phrases.get(tuple(_words(n.series)), ())
        self._script_names = [n for n in self._names if not n.words]
        self._max_phrase = max((len(k) for k in self._phrases), default=0)

    def _has_table(self, name: str) -> bool:
        return self._conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None

    def _load_series_names(self, by_series: Mapping[str, list[Product]]) -> list[SeriesName]:
        has_table = self._has_table("series")
        rows = self._conn.execute("SELECT series, carried, aliases, genres FROM series").fetchall() if has_table else []
        names: list[SeriesName] = []
        listed = set()
        for row in rows:
            listed.add(row["series"])
            self._series_genres[row["series"]] = tuple(json.loads(row["genres"]))
            carried = bool(row["carried"]) and row["series"] in by_series
            for name in (row["series"], *json.loads(row["aliases"])):
                words = tuple(_words(name)) if name.isascii() else ()
                if not name.isascii() and _script_key(name) == "":
                    continue
                names.append(SeriesName(name, row["series"], carried, words))
        for series in by_series:  # a store built without series.jsonl: every catalog series, no aliases
            if series not in listed:
                names.append(SeriesName(series, series, True, tuple(_words(series))))
        return names

    # ---- policies ----------------------------------------------------------------------------------

    def search_policies(self, text: str, limit: int) -> list[PolicySection]:
        """Policy sections ranked by BM25 (SQLite FTS5, porter stemming; a title match counts double) for the
        distinctive words of ``text``; [] when the store has no policy index (built without policies.jsonl,
        or SQLite without FTS5)."""
        words = [w for w in dict.fromkeys(_words(text)) if w not in _POLICY_STOPWORDS and len(w) > 1]
        if not self._has_policy_fts or not words:
            return []
        query = " OR ".join(f'"{w}"' for w in words)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT p.policy_id, p.topic, p.title, p.text FROM {POLICIES_FTS} JOIN policies p ON p.rowid = {POLICIES_FTS}.rowid "
                f"WHERE {POLICIES_FTS} MATCH ? ORDER BY bm25({POLICIES_FTS}, 2.0, 1.0) LIMIT ?",
                (query, limit),
            ).fetchall()
        return [PolicySection(r["policy_id"], r["topic"], r["title"], r["text"]) for r in rows]

    # ---- products ----------------------------------------------------------------------------------

    def get_product(self, asin: str) -> Product | None:
        return self._products.get(asin)

    def product_details(self, asin: str) -> dict[str, str]:
        """The row's description and review summary (page count, readers' rating: attribute questions), or {}."""
        with self._lock:
            row = self._conn.execute("SELECT description, review_summary FROM products WHERE asin = ?", (asin,)).fetchone()
        return {"description": row["description"], "review_summary": row["review_summary"]} if row else {}

    def authors(self) -> dict[str, list[str]]:
        """Author -> the series of theirs the store has products of (sorted)."""
        if not hasattr(self, "_authors"):
            out: dict[str, set[str]] = {}
            for p in self._products.values():
                out.setdefault(p.author, set()).add(p.series)
            self._authors = {a: sorted(s) for a, s in out.items() if a}
        return self._authors

    def series_names(self) -> list[SeriesName]:
        """Every series name and alias, carried or not (entity resolution's vocabulary)."""
        return list(self._names)

    def series_products(self, series: str) -> list[Product]:
        """The products of one series, by volume then ASIN."""
        asins = self._phrases.get(tuple(_words(series)), ())
        return sorted(
            (self._products[a] for a in asins if self._products[a].series == series),
            key=lambda p: (_volume_order(p), p.asin),
        )

    def series_genres(self, series: str) -> tuple[str, ...]:
        """A series' genres as ``series.jsonl`` lists them (carried or not); () when unknown."""
        if series in self._series_genres:
            return self._series_genres[series]
        return next((p.genres for p in self._products.values() if p.series == series), ())

    def script_mentions(self, text: str) -> list[SeriesName]:
        """Japanese-script aliases contained in ``text`` (longest first; one per series)."""
        key = _script_key(text)
        found = [n for n in self._script_names if _script_key(n.name) in key]
        found.sort(key=lambda n: -len(n.name))
        seen: set[str] = set()
        return [n for n in found if not (n.series in seen or seen.add(n.series))]

    def products_by_genre(self, genres: Iterable[str], limit: int, exclude_series: str | None = None) -> list[Product]:
        """First volumes (English print) of the series sharing the most of ``genres``; in stock first."""
        wanted = set(genres)
        starts = [
            p for p in self._products.values()
            if p.volume == 1 and p.format == "tankobon" and p.language == "English" and p.series != exclude_series
            and wanted & set(p.genres)
        ]
        starts.sort(key=lambda p: (-len(wanted & set(p.genres)), p.stock <= 0, p.asin))
        return starts[:limit]

    def get_products(self, asins: Iterable[str]) -> dict[str, Product]:
        """The known products among ``asins`` (unknown ids are simply absent from the result)."""
        return {a: self._products[a] for a in asins if a in self._products}

    def all_asins(self) -> frozenset[str]:
        return self._asins

    def price_of(self, asin: str) -> float | None:
        product = self._products.get(asin)
        return None if product is None else product.price

    def find_products(self, text: str, limit: int = 3) -> list[Product]:
        """Products mentioned in ``text``, best first (see the module docstring for the rules).

        With several series mentioned, results alternate between them (longest mention first) so each
        gets its best product into the first slots.
        """
        if limit <= 0 or not text:
            return []
        words = _words(text)
        matches = self._phrase_matches(words)
        if not matches:
            matches = [
                _Match(len(words), len(words), self._phrases[tuple(_words(n.series))])
                for n in self.script_mentions(text)
                if n.carried and tuple(_words(n.series)) in self._phrases
            ]
        if not matches and self._has_fts:
            matches = self._fts_matches(words)
        if not matches:
            return []
        volumes = _volume_mentions(text, words)
        ranked: list[list[str]] = []
        for m in matches:
            next_start = min((o.start for o in matches if o.start >= m.end), default=len(words))
            wanted = _volume_for(m, next_start, volumes, words, single=len(matches) == 1)
            asins = list(m.asins)
            if wanted is not None:
                asins.sort(key=lambda a: self._products[a].volume != wanted)  # stable: keeps order
            ranked.append(asins)
        out: list[str] = []
        for column in range(max(len(r) for r in ranked)):
            for asins in ranked:
                if column < len(asins) and asins[column] not in out:
                    out.append(asins[column])
                    if len(out) == limit:
                        return [self._products[a] for a in out]
        return [self._products[a] for a in out]

    # ---- orders ------------------------------------------------------------------------------------

    def get_order(self, order_id: str, customer_id: str) -> dict[str, Any] | None:
        """``customer_id``'s order ``order_id`` as in ``orders.jsonl`` (``items`` a list of ASINs); None when
        there is no such order *on that account* -- someone else's order and an unknown id read alike, and an
        empty ``customer_id`` (an anonymous shopper) has no orders."""
        if not customer_id:
            return None
        with self._lock:
            row = self._conn.execute(
                f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE order_id = ? AND customer_id = ?",
                (order_id, customer_id),
            ).fetchone()
        if row is None:
            return None
        order = dict(row)
        order["items"] = json.loads(order["items"])
        return order

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ---- matching internals ------------------------------------------------------------------------

    def _phrase_matches(self, words: list[str]) -> list[_Match]:
        """Longest phrase at each position; drop matches inside a longer one; longest first."""
        found: list[_Match] = []
        for i in range(len(words)):
            for n in range(min(self._max_phrase, len(words) - i), 0, -1):
                asins = self._phrases.get(tuple(words[i : i + n]))
                if asins:
                    found.append(_Match(i, i + n, asins))
                    break
        kept = [
            m
            for m in found
            if not any(o is not m and o.start <= m.start and m.end <= o.end for o in found)
        ]
        return sorted(kept, key=lambda m: (-(m.end - m.start), m.start))

    def _fts_matches(self, words: list[str]) -> list[_Match]:
        """Fallback: series sharing >= 2 distinctive words with the text (FTS5 proposes candidates)."""
        content = {w for w in words if w not in _STOPWORDS and not w.isdigit() and len(w) > 1}
        if len(content) < 2:
            return []
        query = " OR ".join(f'"{w}"' for w in sorted(content))
        with self._lock:
            rows = self._conn.execute(
                f"SELECT p.series FROM {PRODUCTS_FTS} f JOIN products p ON p.rowid = f.rowid "
                f"WHERE {PRODUCTS_FTS} MATCH ? ORDER BY bm25({PRODUCTS_FTS}) LIMIT 50",
                (f"series : ({query})",),
            ).fetchall()
        best: dict[tuple[str, ...], int] = {}
        for (series,) in rows:
            key = tuple(_words(series))
            distinctive = {w for w in key if w not in _STOPWORDS and len(w) > 1}
            shared = len(distinctive & content)
            if shared >= 2 and shared * 2 >= len(distinctive) and key in self._phrases:
                best[key] = shared
        ordered = sorted(best, key=lambda k: -best[k])
        return [_Match(len(words), len(words), self._phrases[k]) for k in ordered]


# ---- helpers ---------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    """Lowercase ASCII-folded words, digits split from letters ("v3" -> v, 3); apostrophes dropped."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return re.findall(r"[a-z]+|[0-9]+", re.sub(r"['`]", "", folded))


def _volume_mentions(text: str, words: list[str]) -> list[tuple[int, int]]:
    """(word position, volume) for each explicit volume marker in ``text``."""
    mentions = []
    for m in _VOLUME_MARKER.finditer(text):
        group = 1 if m.group(1) is not None else 2
        position = len(_words(text[: m.start(group)]))  # index of the number among the words
        if position < len(words):
            mentions.append((position, int(m.group(group))))
    return mentions


def _volume_for(
    match: _Match,
    next_start: int,
    volumes: list[tuple[int, int]],
    words: list[str],
    *,
    single: bool,
) -> int | None:
    """The volume asked for with ``match``: a marker between it and the next mention, else a bare
    number right after it ("chainsaw man 5"), else (single mention only) any marker in the text."""
    for position, volume in volumes:
        if match.end <= position < next_start:
            return volume
    if match.end < len(words) and words[match.end].isdigit() and len(words[match.end]) <= 4:
        return int(words[match.end])
    if single and volumes:
        return volumes[0][1]
    return None


def _volume_order(p: Product) -> tuple[int, int]:
    return (p.volume is None, p.volume or 0)


def _script_key(text: str) -> str:
    """Japanese-script matching key: NFKC, lowercase, no spaces or punctuation (「」【】・!)."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).lower())


def _product(row: sqlite3.Row) -> Product:
    return Product(
        asin=row["asin"],
        title=row["title"],
        series=row["series"],
        volume=row["volume"],
        author=row["author"],
        publisher=row["publisher"],
        format=row["format"],
        language=row["language"],
        age_rating=row["age_rating"],
        genres=tuple(json.loads(row["genres"])),
        price=row["price"],
        stock=row["stock"],
        release_date=row["release_date"],
    )
