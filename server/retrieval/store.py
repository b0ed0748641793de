"""The catalog + orders store: the guardrails' source of truth for product IDs and prices.

Built once from ``catalog.jsonl`` / ``orders.jsonl`` into an SQLite file (``CatalogStore.build``); served
read-only (``CatalogStore(db_path)`` opens ``mode=ro``). The product table is small (thousands of rows)
and immutable while serving, so it is loaded into memory at open: ``get_product``, ``all_asins``,
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
FTS5 query (if this SQLite has FTS5) proposes candidates whose series name shares at least two
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

from server.ids import ASIN_RE, ORDER_ID_RE
from server.retrieval.base import Product


_PRODUCT_COLUMNS = (
    "asin", "title", "series", "volume", "author", "publisher", "format", "language", "age_rating",
    "genres", "price", "stock", "release_date", "description", "review_summary",
)  # fmt: skip
_ORDER_COLUMNS = (
    "order_id", "status", "carrier", "tracking_number", "items", "placed_at", "eta",
)  # fmt: skip

_SCHEMA = """
CREATE TABLE products (
    asin TEXT PRIMARY KEY, title TEXT NOT NULL, series TEXT NOT NULL, volume INTEGER,
    author TEXT NOT NULL, publisher TEXT NOT NULL, format TEXT NOT NULL, language TEXT NOT NULL,
    age_rating TEXT NOT NULL, genres TEXT NOT NULL, price REAL NOT NULL, stock INTEGER NOT NULL,
    release_date TEXT NOT NULL, description TEXT NOT NULL, review_summary TEXT NOT NULL
);
CREATE INDEX products_series ON products(series, volume);
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY, status TEXT NOT NULL, carrier TEXT, tracking_number TEXT,
    items TEXT NOT NULL, placed_at TEXT NOT NULL, eta TEXT
);
CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE series (
    series TEXT PRIMARY KEY, author TEXT NOT NULL, carried INTEGER NOT NULL, aliases TEXT NOT NULL,
    genres TEXT NOT NULL
);
CREATE TABLE policies (policy_id TEXT PRIMARY KEY, topic TEXT NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL);
"""
_FTS_SCHEMA = """
CREATE VIRTUAL TABLE products_fts USING fts5(
    title, series, content='products', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
INSERT INTO products_fts(rowid, title, series) SELECT rowid, title, series FROM products;
CREATE VIRTUAL TABLE policies_fts USING fts5(
    title, text, content='policies', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
);
INSERT INTO policies_fts(rowid, title, text) SELECT rowid, title, text FROM policies;
"""

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
    """Read-only access to products and orders in an SQLite file built by :meth:`build`."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.db_path = Path(db_path)
        if not self.db_path.is_file():
            raise FileNotFoundError(f"catalog store not found: {self.db_path}")
        self._conn = sqlite3.connect(
            f"file:{self.db_path.resolve()}?mode=ro", uri=True, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        rows = self._conn.execute(f"SELECT {', '.join(_PRODUCT_COLUMNS)} FROM products").fetchall()
        self._products: dict[str, Product] = {r["asin"]: _product(r) for r in rows}
        self._asins = frozenset(self._products)
        self._has_fts = bool(
            self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='products_fts'"
            ).fetchone()
        )
        self._has_policy_fts = bool(
            self._conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='policies_fts'").fetchone()
        )
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

    def _load_series_names(self, by_series: Mapping[str, list[Product]]) -> list[SeriesName]:
        has_table = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='series'"
        ).fetchone()
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

    # ---- build -------------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        catalog_jsonl: str | os.PathLike[str],
        orders_jsonl: str | os.PathLike[str] | None,
        db_path: str | os.PathLike[str],
        series_jsonl: str | os.PathLike[str] | None = None,
        policies_jsonl: str | os.PathLike[str] | None = None,
    ) -> CatalogStore:
        """Create ``db_path`` from the JSONL files (replacing it atomically) and open it read-only.

        Records are validated (ASIN / order-id format, required fields, duplicates); a bad record raises
        ValueError naming the file and line.
        """
        db_path = Path(db_path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = db_path.with_name(f".{db_path.name}.tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp)
        try:
            conn.executescript(_SCHEMA)
            products = [_product_row(rec, where) for rec, where in _read_jsonl(catalog_jsonl)]
            _insert_unique(conn, "products", _PRODUCT_COLUMNS, products, catalog_jsonl)
            if orders_jsonl is not None:
                orders = [_order_row(rec, where) for rec, where in _read_jsonl(orders_jsonl)]
                _insert_unique(conn, "orders", _ORDER_COLUMNS, orders, orders_jsonl)
            if series_jsonl is not None:
                rows = [_series_row(rec, where) for rec, where in _read_jsonl(series_jsonl)]
                _insert_unique(conn, "series", ("series", "author", "carried", "aliases", "genres"), rows, series_jsonl)
            if policies_jsonl is not None:
                rows = [_policy_row(rec, where) for rec, where in _read_jsonl(policies_jsonl)]
                _insert_unique(conn, "policies", ("policy_id", "topic", "title", "text"), rows, policies_jsonl)
            if fts5_available():
                conn.executescript(_FTS_SCHEMA)
            conn.execute(
                "INSERT INTO store_meta VALUES ('source', ?)",
                (json.dumps({"catalog": str(catalog_jsonl), "orders": str(orders_jsonl)}),),
            )
            conn.commit()
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise
        conn.close()
        os.replace(tmp, db_path)
        return cls(db_path)

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
                "SELECT p.policy_id, p.topic, p.title, p.text FROM policies_fts JOIN policies p ON p.rowid = policies_fts.rowid "
                "WHERE policies_fts MATCH ? ORDER BY bm25(policies_fts, 2.0, 1.0) LIMIT ?",
                (query, limit),
            ).fetchall()
        return [PolicySection(r["policy_id"], r["topic"], r["title"], r["text"]) for r in rows]

    # ---- products ----------------------------------------------------------------------------------

    def get_product(self, asin: str) -> Product | None:
        return self._products.get(asin)

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

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        """The order record as in ``orders.jsonl`` (``items`` a list of ASINs), or None."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {', '.join(_ORDER_COLUMNS)} FROM orders WHERE order_id = ?", (order_id,)
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
                "SELECT p.series FROM products_fts f JOIN products p ON p.rowid = f.rowid "
                "WHERE products_fts MATCH ? ORDER BY bm25(products_fts) LIMIT 50",
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


def fts5_available() -> bool:
    """Whether this Python's SQLite was compiled with FTS5."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


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


def _read_jsonl(path: str | os.PathLike[str]) -> Iterable[tuple[dict[str, Any], str]]:
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line), f"{path}:{lineno}"
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno}: invalid JSON ({err.msg})") from err


def _product_row(rec: Mapping[str, Any], where: str) -> tuple[Any, ...]:
    try:
        if not ASIN_RE.match(rec["asin"]):
            raise ValueError(f"bad asin {rec['asin']!r}")
        return (
            rec["asin"], rec["title"], rec["series"], rec.get("volume"), rec["author"],
            rec["publisher"], rec["format"], rec["language"], rec["age_rating"],
            json.dumps(list(rec.get("genres", []))), round(float(rec["price"]), 2),
            int(rec.get("stock", 0)), rec.get("release_date", ""), rec.get("description", ""),
            rec.get("review_summary", ""),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: invalid catalog record: {err!r}") from err


def _policy_row(rec: Mapping[str, Any], where: str) -> tuple[Any, ...]:
    try:
        return (str(rec["policy_id"]), str(rec.get("topic", "")), str(rec["title"]), str(rec["text"]))
    except KeyError as e:
        raise ValueError(f"{where}: policy record lacks {e}") from None


def _series_row(rec: Mapping[str, Any], where: str) -> tuple[Any, ...]:
    try:
        return (
            rec["series"], rec.get("author", ""), int(bool(rec.get("carried", True))),
            json.dumps(list(rec.get("aliases", [])), ensure_ascii=False), json.dumps(list(rec.get("genres", []))),
        )  # fmt: skip
    except (KeyError, TypeError) as err:
        raise ValueError(f"{where}: invalid series record: {err!r}") from err


def _script_key(text: str) -> str:
    """Japanese-script matching key: NFKC, lowercase, no spaces or punctuation (「」【】・!)."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).lower())


def _order_row(rec: Mapping[str, Any], where: str) -> tuple[Any, ...]:
    try:
        if not ORDER_ID_RE.match(rec["order_id"]):
            raise ValueError(f"bad order_id {rec['order_id']!r}")
        return (
            rec["order_id"], rec["status"], rec.get("carrier"), rec.get("tracking_number"),
            json.dumps(list(rec["items"])), rec["placed_at"], rec.get("eta"),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: invalid order record: {err!r}") from err


def _insert_unique(
    conn: sqlite3.Connection,
    table: str,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    source: str | os.PathLike[str],
) -> None:
    seen: set[str] = set()
    for row in rows:
        if row[0] in seen:
            raise ValueError(f"{source}: duplicate {columns[0]} {row[0]!r}")
        seen.add(row[0])
    placeholders = ", ".join("?" for _ in columns)
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)


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
