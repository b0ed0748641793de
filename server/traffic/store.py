"""Where traffic records live: one interface, two implementations.

* :class:`SQLiteTrafficStore` -- the embedded default (a file next to the service; ``:memory:`` in tests);
* :class:`PostgresTrafficStore` -- a cluster's shared store (psycopg 3; the DSN carries no password: libpq
  reads ``PGPASSWORD``/``PGPASSFILE`` from the pod's environment, rendered from a Secret).

Both use the same table (mappings/sequences as JSON text, :meth:`TrafficRecord.to_row`), are thread-safe (the
writer calls them from a worker thread, never on the event loop), and bound themselves with :meth:`prune`:
rows older than the retention, then the oldest rows beyond ``max_rows``.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable, Protocol, Sequence

from server.traffic.record import COLUMNS, TrafficRecord

_TYPES = {
    "ts": "DOUBLE PRECISION NOT NULL", "confidence": "DOUBLE PRECISION", "cost_usd": "DOUBLE PRECISION",
    "rule_decided": "INTEGER", "blocked": "INTEGER", "stream": "INTEGER", "input_tokens": "INTEGER",
    "output_tokens": "INTEGER", "hallucination": "DOUBLE PRECISION",
}


def _ddl(table: str, id_column: str) -> list[str]:
    cols = ", ".join(f"{c} {_TYPES.get(c, 'text')}" for c in COLUMNS)
    return [
        f"CREATE TABLE IF NOT EXISTS {table} ({id_column}, {cols})",
        f"CREATE INDEX IF NOT EXISTS {table}_ts ON {table} (ts)",
        f"CREATE INDEX IF NOT EXISTS {table}_request ON {table} (request_id)",
    ]


def _added_columns(table: str, present: set[str]) -> list[str]:
    """ALTER statements for columns a newer release added (a store created by an older one is upgraded in place)."""
    return [f"ALTER TABLE {table} ADD COLUMN {c} {_TYPES.get(c, 'text')}" for c in COLUMNS if c not in present]


class TrafficStore(Protocol):
    def write(self, records: Sequence[TrafficRecord]) -> int: ...

    def records(self, since: float | None = None, until: float | None = None, limit: int | None = None,
                sample: bool = False) -> list[TrafficRecord]:
        """Records with ``since <= ts < until``, oldest first: the first ``limit`` of them, or with ``sample`` a
        uniform random ``limit`` of them (the drift job reads bounded samples of big windows)."""
        ...

    def prune(self, older_than: float, max_rows: int) -> int:
        """Delete rows with ts < ``older_than``, then the oldest beyond ``max_rows``; returns rows deleted."""
        ...

    def set_feedback(self, request_id: str, feedback: str) -> bool: ...

    def set_hallucination(self, request_id: str, score: float) -> bool: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


class SQLiteTrafficStore:
    def __init__(self, path: str = ":memory:", table: str = "traffic") -> None:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path, self.table = path, table
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")  # the drift CLI reads while the service writes
            self._db.execute("PRAGMA synchronous=NORMAL")
        for statement in _ddl(table, "id INTEGER PRIMARY KEY AUTOINCREMENT"):
            self._db.execute(statement)
        present = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
        for statement in _added_columns(table, present):
            self._db.execute(statement)

    def write(self, records: Sequence[TrafficRecord]) -> int:
        if not records:
            return 0
        sql = f"INSERT INTO {self.table} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        rows = [r.to_tuple() for r in records]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def records(self, since: float | None = None, until: float | None = None, limit: int | None = None,
                sample: bool = False) -> list[TrafficRecord]:
        sql, args = _select(self.table, since, until, limit, "?", sample)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [TrafficRecord.from_row(dict(r)) for r in rows]

    def prune(self, older_than: float, max_rows: int) -> int:
        with self._lock:
            deleted = self._db.execute(f"DELETE FROM {self.table} WHERE ts < ?", (older_than,)).rowcount
            deleted += self._db.execute(_bound_sql(self.table, "?"), (max_rows,)).rowcount
        return deleted

    def set_feedback(self, request_id: str, feedback: str) -> bool:
        return self._set("feedback", request_id, feedback)

    def set_hallucination(self, request_id: str, score: float) -> bool:
        return self._set("hallucination", request_id, float(score))

    def _set(self, column: str, request_id: str, value: Any) -> bool:
        with self._lock:
            cur = self._db.execute(f"UPDATE {self.table} SET {column} = ? WHERE request_id = ?", (value, request_id))
        return cur.rowcount > 0

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresTrafficStore:
    """psycopg 3, one autocommit connection behind a lock (the single background writer is its only
    heavy user); a dropped connection is reopened on the next call."""

    def __init__(self, dsn: str, table: str = "traffic", connect_timeout_s: float = 5.0) -> None:
        import psycopg  # noqa: F401 -- fail at start-up, not at the first write

        self.dsn, self.table, self.connect_timeout_s = dsn, table, connect_timeout_s
        self._lock = threading.Lock()
        self._conn: Any = None
        with self._lock:
            conn = self._connection()
            for statement in _ddl(table, "id BIGSERIAL PRIMARY KEY"):
                conn.execute(statement)
            present = {row[0] for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)).fetchall()}
            for statement in _added_columns(table, present):
                conn.execute(statement)

    def _connection(self) -> Any:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=max(1, int(self.connect_timeout_s)))
        return self._conn

    def _run(self, fn: Any) -> Any:
        import psycopg

        with self._lock:
            try:
                return fn(self._connection())
            except psycopg.OperationalError:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                raise

    def write(self, records: Sequence[TrafficRecord]) -> int:
        if not records:
            return 0
        sql = f"INSERT INTO {self.table} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
        rows = [r.to_tuple() for r in records]

        def run(conn: Any) -> int:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, rows)
            return len(rows)

        return self._run(run)

    def records(self, since: float | None = None, until: float | None = None, limit: int | None = None,
                sample: bool = False) -> list[TrafficRecord]:
        from psycopg.rows import dict_row

        sql, args = _select(self.table, since, until, limit, "%s", sample)

        def run(conn: Any) -> list[TrafficRecord]:
            with conn.cursor(row_factory=dict_row) as cur:
                return [TrafficRecord.from_row(r) for r in cur.execute(sql, args).fetchall()]

        return self._run(run)

    def prune(self, older_than: float, max_rows: int) -> int:
        def run(conn: Any) -> int:
            with conn.transaction():
                deleted = conn.execute(f"DELETE FROM {self.table} WHERE ts < %s", (older_than,)).rowcount
                deleted += conn.execute(_bound_sql(self.table, "%s"), (max_rows,)).rowcount
            return deleted

        return self._run(run)

    def set_feedback(self, request_id: str, feedback: str) -> bool:
        return self._set("feedback", request_id, feedback)

    def set_hallucination(self, request_id: str, score: float) -> bool:
        return self._set("hallucination", request_id, float(score))

    def _set(self, column: str, request_id: str, value: Any) -> bool:
        sql = f"UPDATE {self.table} SET {column} = %s WHERE request_id = %s"
        return self._run(lambda conn: conn.execute(sql, (value, request_id)).rowcount > 0)

    def count(self) -> int:
        return int(self._run(lambda conn: conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0]))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _select(table: str, since: float | None, until: float | None, limit: int | None, mark: str,
            sample: bool = False) -> tuple[str, list]:
    where, args = [], []
    if since is not None:
        where.append(f"ts >= {mark}")
        args.append(since)
    if until is not None:
        where.append(f"ts < {mark}")
        args.append(until)
    sql = f"SELECT {', '.join(COLUMNS)}, id FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    if sample and limit is not None:  # a uniform sample of the window, then back in time order
        sql = f"SELECT * FROM ({sql} ORDER BY random() LIMIT {int(limit)}) AS s"
    sql += " ORDER BY ts, id"
    if limit is not None and not sample:
        sql += f" LIMIT {int(limit)}"
    return sql, args


def _bound_sql(table: str, mark: str) -> str:
    """Delete every row at or below the id of the (max_rows+1)-th newest: ids grow with insertion."""
    return (f"DELETE FROM {table} WHERE id <= (SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET {mark})")


def open_store(settings: Any) -> TrafficStore | None:
    """The store ``settings.state`` puts the log in: PostgreSQL at ``state.postgres_dsn`` under ``state.backend:
    redis`` (one table for every replica), else SQLite at ``traffic.sqlite_path``. None when ``traffic.enabled`` is
    false."""
    t = settings.traffic
    if not t.enabled:
        return None
    if settings.state.shared:
        return PostgresTrafficStore(settings.state.postgres_dsn, table=t.table)
    return SQLiteTrafficStore(t.sqlite_path, table=t.table)


def write_all(store: TrafficStore, records: Iterable[TrafficRecord], batch: int = 500) -> int:
    """Bulk load (simulations, imports) in batches."""
    done, chunk = 0, []
    for record in records:
        chunk.append(record)
        if len(chunk) >= batch:
            done += store.write(chunk)
            chunk = []
    return done + store.write(chunk)
