"""The catalog store's SQLite layout, defined once for its writer and its reader.

A leaf module (standard library only), like ``model_repository/contract.py``: the build writes
``<build>/index/catalog.sqlite`` with it (``model_repository/index/catalog.py``) and the service reads that
file with it (``server/retrieval/store.py``, opened read-only). The column lists are the order both
sides insert and select in, so a column added here is written and read alike.
"""

from __future__ import annotations

import hashlib

#: ``products`` columns, in insert/select order.
PRODUCT_COLUMNS: tuple[str, ...] = (
    "asin", "title", "series", "volume", "author", "publisher", "format", "language", "age_rating",
    "genres", "price", "stock", "release_date", "description", "review_summary",
)  # fmt: skip
#: ``orders`` columns (``items``: a JSON list of ASINs; ``customer_id``: the account that placed it).
ORDER_COLUMNS: tuple[str, ...] = (
    "order_id", "status", "carrier", "tracking_number", "items", "placed_at", "eta", "customer_id",
)  # fmt: skip
#: How many store accounts the generated orders spread over (``C-1000`` .. ``C-1199``: ~2.5 orders each).
CUSTOMER_ACCOUNTS = 200
def guest_customer(record_id: str) -> str:
    """A signed-in account that placed none of the store's orders, one per golden record or conversation (each
    shopper has their own rate-limit bucket, as in production): ``G-<record id>``."""
    return f"G-{record_id}"
#: ``series`` columns (``aliases``, ``genres``: JSON lists; ``carried``: 0 for a series the store does not sell).
SERIES_COLUMNS: tuple[str, ...] = ("series", "author", "carried", "aliases", "genres")
#: ``policies`` columns: one row per section of ``policies.jsonl``.
POLICY_COLUMNS: tuple[str, ...] = ("policy_id", "topic", "title", "text")

def order_customer(order: dict) -> str:
    """The account an order belongs to: its ``customer_id`` when the record has one, else a stable account
    derived from the order id (the generated ``orders.jsonl`` predates accounts). The catalog build writes it
    into ``orders.customer_id``; the golden sets use it to chat as the order's owner."""
    if order.get("customer_id"):
        return str(order["customer_id"])
    digest = int(hashlib.sha256(str(order["order_id"]).encode()).hexdigest()[:8], 16)
    return f"C-{1000 + digest % CUSTOMER_ACCOUNTS}"


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
    items TEXT NOT NULL, placed_at TEXT NOT NULL, eta TEXT, customer_id TEXT NOT NULL
);
CREATE INDEX orders_customer ON orders(customer_id);
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
