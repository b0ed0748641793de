"""The human review queue: answers whose hallucination score crossed the alert threshold.

* :class:`ReviewQueue` -- SQLite, one file per pod (the embedded default). One connection shared under a lock
  (``check_same_thread=False``); callers on the event loop go through ``asyncio.to_thread`` (the scoring worker
  does). WAL mode, so a reviewer's tool can read while the service writes. ``":memory:"`` works for tests.
* :class:`RedisReviewQueue` -- the same interface in the shared Redis (``state.backend: redis``), so
  every pod's alerts land in one queue: an item is a hash, the pending ones a sorted set (worst score first,
  then oldest), ids from ``INCR``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

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


class RedisReviewQueue:
    def __init__(self, url: str, *, key_prefix: str = "mangaassist:session:", timeout_ms: float = 250.0,
                 client: Any = None) -> None:
        import redis

        self.prefix = key_prefix + "review:"
        self._redis = client or redis.Redis.from_url(url, socket_timeout=timeout_ms / 1000.0,
                                                     socket_connect_timeout=timeout_ms / 1000.0)

    def _item_key(self, item_id: int) -> str:
        return f"{self.prefix}item:{int(item_id)}"

    def add(
        self, session_id: str, request_id: str, answer: str, claim: str, score: float, sources: Sequence[str]
    ) -> int:
        item_id = int(self._redis.incr(self.prefix + "next"))
        tx = self._redis.pipeline(transaction=True)
        tx.hset(self._item_key(item_id), mapping={
            "created_at": time.time(), "session_id": session_id, "request_id": request_id, "answer": answer,
            "claim": claim, "score": float(score), "sources": json.dumps(list(sources)),
        })
        tx.zadd(self.prefix + "pending", {f"{item_id:012d}": -float(score)})  # ascending: worst first, ties by id
        tx.execute()
        return item_id

    def pending(self, limit: int = 50) -> list[ReviewItem]:
        """Unreviewed items, worst score first (then oldest)."""
        ids = [int(m) for m in self._redis.zrange(self.prefix + "pending", 0, int(limit) - 1)]
        return [item for item in map(self.get, ids) if item is not None]

    def get(self, item_id: int) -> ReviewItem | None:
        raw = {k.decode(): v.decode() for k, v in self._redis.hgetall(self._item_key(item_id)).items()}
        if not raw:
            return None
        return ReviewItem(int(item_id), float(raw["created_at"]), raw["session_id"], raw["request_id"], raw["answer"],
                          raw["claim"], float(raw["score"]), tuple(json.loads(raw["sources"])),
                          float(raw["reviewed_at"]) if "reviewed_at" in raw else None, raw.get("verdict"))

    def mark_reviewed(self, item_id: int, verdict: str = "reviewed") -> bool:
        """True if the item existed and was pending (the sorted-set removal decides, so two reviewers cannot
        both mark one item)."""
        if not self._redis.zrem(self.prefix + "pending", f"{int(item_id):012d}"):
            return False
        self._redis.hset(self._item_key(item_id), mapping={"reviewed_at": time.time(), "verdict": verdict})
        return True

    def count_pending(self) -> int:
        return int(self._redis.zcard(self.prefix + "pending"))

    def close(self) -> None:
        self._redis.close()


def build_review_queue(settings: Any, db_path: str | Path) -> "ReviewQueue | RedisReviewQueue":
    """In the shared Redis under ``state.backend: redis`` (one queue for every replica), else SQLite."""
    if settings.state.shared:
        return RedisReviewQueue(settings.state.redis_url, key_prefix=settings.sessions.key_prefix)
    return ReviewQueue(db_path)


def _item(row: tuple) -> ReviewItem:
    return ReviewItem(row[0], row[1], row[2], row[3], row[4], row[5], row[6], tuple(json.loads(row[7])), row[8], row[9])
