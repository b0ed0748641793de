"""Write the catalog store: ``catalog.jsonl`` / ``orders.jsonl`` / ``series.jsonl`` / ``policies.jsonl`` ->
one SQLite file (``<build>/index/catalog.sqlite``), in the layout of ``model_repository/catalog_schema.py``.

Build side only: the service opens the file read-only with ``server.retrieval.store.CatalogStore``.
Records are validated here (ASIN / order-id shapes from ``server/ids.py``, required fields, duplicates), so
the service never sees a malformed row.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Mapping

from model_repository.catalog_schema import (
    FTS_SCHEMA,
    ORDER_COLUMNS,
    POLICY_COLUMNS,
    PRODUCT_COLUMNS,
    SCHEMA,
    SERIES_COLUMNS,
    order_customer,
)
from server.ids import ASIN_RE, ORDER_ID_RE


def build_catalog(
    catalog_jsonl: str | os.PathLike[str],
    orders_jsonl: str | os.PathLike[str] | None,
    db_path: str | os.PathLike[str],
    series_jsonl: str | os.PathLike[str] | None = None,
    policies_jsonl: str | os.PathLike[str] | None = None,
) -> Path:
    """Create ``db_path`` from the JSONL files (replacing it atomically); returns ``db_path``.

    A bad record raises ValueError naming the file and line; nothing is replaced then.
    """
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = db_path.with_name(f".{db_path.name}.tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(SCHEMA)
        products = [_product_row(rec, where) for rec, where in _read_jsonl(catalog_jsonl)]
        _insert_unique(conn, "products", PRODUCT_COLUMNS, products, catalog_jsonl)
        if orders_jsonl is not None:
            orders = [_order_row(rec, where) for rec, where in _read_jsonl(orders_jsonl)]
            _insert_unique(conn, "orders", ORDER_COLUMNS, orders, orders_jsonl)
        if series_jsonl is not None:
            rows = [_series_row(rec, where) for rec, where in _read_jsonl(series_jsonl)]
            _insert_unique(conn, "series", SERIES_COLUMNS, rows, series_jsonl)
        if policies_jsonl is not None:
            rows = [_policy_row(rec, where) for rec, where in _read_jsonl(policies_jsonl)]
            _insert_unique(conn, "policies", POLICY_COLUMNS, rows, policies_jsonl)
        if fts5_available():
            conn.executescript(FTS_SCHEMA)
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
    return db_path


def row_count(db_path: str | os.PathLike[str], table: str) -> int:
    """Rows in ``table`` of a written catalog (the build report's counts)."""
    with contextlib.closing(sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True)) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def fts5_available() -> bool:
    """Whether this Python's SQLite was compiled with FTS5 (the full-text tables are written only then)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(x)")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


# ---- records -> rows -------------------------------------------------------------------------------


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


def _order_row(rec: Mapping[str, Any], where: str) -> tuple[Any, ...]:
    try:
        if not ORDER_ID_RE.match(rec["order_id"]):
            raise ValueError(f"bad order_id {rec['order_id']!r}")
        return (
            rec["order_id"], rec["status"], rec.get("carrier"), rec.get("tracking_number"),
            json.dumps(list(rec["items"])), rec["placed_at"], rec.get("eta"), order_customer(rec),
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
