"""The catalog store's SQLite layout, defined once for its writer and its reader.

A leaf module (standard library only), like ``model_repository/contract.py``: the build writes
``<build>/index/catalog.sqlite`` with it (``model_repository/index/catalog.py``) and the service reads that
file with it (``server/retrieval/store.py``, opened read-only). The column lists are the order both
sides insert and select in, so a column added here is written and read alike.
"""

from __future__ import annotations

#: ``products`` columns, in insert/select order.
PRODUCT_COLUMNS: tuple[str, ...] = (
    "asin", "title", "series", "volume", "author", "publisher", "format", "language", "age_rating",
    "genres", "price", "stock", "release_date", "description", "review_summary",
)  # fmt: skip
#: ``orders`` columns (``items``: a JSON list of ASINs).
ORDER_COLUMNS: tuple[str, ...] = (
    "order_id", "status", "carrier", "tracking_number", "items", "placed_at", "eta",
)  # fmt: skip
#: ``series`` columns (``aliases``, ``genres``: JSON lists; ``carried``: 0 for a series the store does not sell).
SERIES_COLUMNS: tuple[str, ...] = ("series", "author", "carried", "aliases", "genres")
#: ``policies`` columns: one row per section of ``policies.jsonl``.
POLICY_COLUMNS: tuple[str, ...] = ("policy_id", "topic", "title", "text")

SCHEMA = """
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

#: Full-text indexes over products (title, series) and policies (title, text); written only when the
#: writer's SQLite has FTS5, so the reader checks for them (:data:`PRODUCTS_FTS`, :data:`POLICIES_FTS`).
PRODUCTS_FTS = "products_fts"
POLICIES_FTS = "policies_fts"
FTS_SCHEMA = f"""
CREATE VIRTUAL TABLE {PRODUCTS_FTS} USING fts5(
    title, series, content='products', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
INSERT INTO {PRODUCTS_FTS}(rowid, title, series) SELECT rowid, title, series FROM products;
CREATE VIRTUAL TABLE {POLICIES_FTS} USING fts5(
    title, text, content='policies', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
);
INSERT INTO {POLICIES_FTS}(rowid, title, text) SELECT rowid, title, text FROM policies;
"""
