"""The human review queue: answers whose hallucination score crossed the alert threshold, in SQLite.

One connection shared under a lock (``check_same_thread=False``); callers on the event loop go through
``asyncio.to_thread`` (the scoring worker does). WAL mode, so a reviewer's tool can read while the
service writes. ``":memory:"`` works for tests.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

#: the columns :func:`_item` reads, in its order
_SELECT = (
    "SELECT id, created_at, session_id, request_id, answer, claim, score, sources, reviewed_at, verdict "
    "FROM hallucination_review"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS hallucination_review (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    session_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    answer TEXT NOT NULL,
    claim TEXT NOT NULL,
    score REAL NOT NULL,
    sources TEXT NOT NULL,
    reviewed_at REAL,
    verdict TEXT
);
CREATE INDEX IF NOT EXISTS hallucination_review_pending ON hallucination_review(reviewed_at, id);
"""


@dataclass(frozen=True)
class ReviewItem:
    id: int
    created_at: float
    session_id: str
    request_id: str
    answer: str
    claim: str
    score: float
    sources: tuple[str, ...]
    reviewed_at: float | None = None
    verdict: str | None = None


class ReviewQueue:
    def __init__(self, db_path: str | Path) -> None:
        self.db_path = str(db_path)
        if self.db_path != ":memory:":
            Path(self.db_path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.db_path, check_same_thread=False)
        with self._lock:
            if self.db_path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)
            self._conn.commit()

    def add(
        self, session_id: str, request_id: str, answer: str, claim: str, score: float, sources: Sequence[str]
    ) -> int:
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO hallucination_review (created_at, session_id, request_id, answer, claim, score, sources) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), session_id, request_id, answer, claim, float(score), json.dumps(list(sources))),
            )
            self._conn.commit()
            return int(cur.lastrowid)

    def pending(self, limit: int = 50) -> list[ReviewItem]:
        """Unreviewed items, worst score first (then oldest)."""
        with self._lock:
            rows = self._conn.execute(
                f"{_SELECT} WHERE reviewed_at IS NULL ORDER BY score DESC, id LIMIT ?",
                (int(limit),),
            ).fetchall()
        return [_item(r) for r in rows]

    def get(self, item_id: int) -> ReviewItem | None:
        with self._lock:
            row = self._conn.execute(
                f"{_SELECT} WHERE id = ?",
                (int(item_id),),
            ).fetchone()
        return None if row is None else _item(row)

    def mark_reviewed(self, item_id: int, verdict: str = "reviewed") -> bool:
        """True if the item existed and was pending."""
        with self._lock:
            cur = self._conn.execute(
                "UPDATE hallucination_review SET reviewed_at = ?, verdict = ? WHERE id = ? AND reviewed_at IS NULL",
                (time.time(), verdict, int(item_id)),
            )
            self._conn.commit()
            return cur.rowcount == 1

    def count_pending(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM hallucination_review WHERE reviewed_at IS NULL").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _item(row: tuple) -> ReviewItem:
    return ReviewItem(row[0], row[1], row[2], row[3], row[4], row[5], row[6], tuple(json.loads(row[7])), row[8], row[9])
