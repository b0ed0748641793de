"""Customer feedback on answers (the ``Feedback`` RPC), attributed to the model versions that answered.

API (the service writes; the canary guards, the metrics and the drift/traffic-log work read)::

    store = FeedbackStore(window=100_000, db_path="")       # db_path: SQLite file ("" = memory only)
    store.remember(request_id, session_id, versions={"intent_classifier_onnx": "2"}, intent=..., confidence=...)
    rec = store.record(request_id, session_id, kind, comment)  # -> FeedbackRecord | None (unknown/too old id)
    store.answer(request_id) -> Answer | None                # what answered that request
    store.recent(limit=1000) -> list[FeedbackRecord]         # newest last
    store.counts(model) -> {version: {"answers": n, "thumbs_up": n, "thumbs_down": n, "escalated": n}}

``kind`` is ``"thumbs_up" | "thumbs_down" | "escalated"`` (:data:`KINDS`). Comments are PII-redacted before they
are kept. With ``db_path`` every record is appended to table ``feedback`` (request_id, session_id, kind, comment,
versions JSON, intent, confidence, at) -- the table the traffic log / drift jobs read.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Mapping

KINDS = ("thumbs_up", "thumbs_down", "escalated")
MAX_COMMENT_CHARS = 2000


@dataclass(frozen=True)
class Answer:
    request_id: str
    session_id: str
    versions: Mapping[str, str]
    intent: str
    confidence: float
    at: float


@dataclass(frozen=True)
class FeedbackRecord:
    request_id: str
    session_id: str
    kind: str
    comment: str
    versions: Mapping[str, str] = field(default_factory=dict)
    intent: str = ""
    confidence: float = 0.0
    at: float = 0.0


class FeedbackStore:
    def __init__(self, window: int = 100_000, db_path: str = "", max_records: int = 100_000) -> None:
        from server.guardrails.pii import PiiRedactor

        self.window = max(1, window)
        self._answers: OrderedDict[str, Answer] = OrderedDict()
        self._records: list[FeedbackRecord] = []
        self._max_records = max_records
        self._counts: dict[str, dict[str, dict[str, int]]] = {}
        self._redactor = PiiRedactor()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if db_path:
            self._db = sqlite3.connect(db_path, check_same_thread=False)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS feedback (request_id TEXT, session_id TEXT, kind TEXT, comment TEXT, "
                "versions TEXT, intent TEXT, confidence REAL, at REAL)"
            )
            self._db.commit()

    def remember(self, request_id: str, session_id: str, *, versions: Mapping[str, str], intent: str = "",
                 confidence: float = 0.0) -> None:
        """An answer went out: keep what answered it (bounded: the oldest of ``window`` answers is forgotten)."""
        if not request_id:
            return
        with self._lock:
            self._answers[request_id] = Answer(request_id, session_id, dict(versions), intent, confidence, time.time())
            while len(self._answers) > self.window:
                self._answers.popitem(last=False)
            for model, version in versions.items():
                self._bump(model, version, "answers")

    def answer(self, request_id: str) -> Answer | None:
        with self._lock:
            return self._answers.get(request_id)

    def record(self, request_id: str, session_id: str, kind: str, comment: str = "") -> FeedbackRecord | None:
        """Feedback on one answer; None when the request id is unknown (or forgotten) or names another session."""
        if kind not in KINDS:
            raise ValueError(f"feedback kind {kind!r}; expected one of {KINDS}")
        answer = self.answer(request_id)
        if answer is None or (session_id and answer.session_id and session_id != answer.session_id):
            return None
        text = self._redactor.redact(comment[:MAX_COMMENT_CHARS]).text if comment else ""
        rec = FeedbackRecord(request_id, answer.session_id, kind, text, dict(answer.versions), answer.intent,
                             answer.confidence, time.time())
        with self._lock:
            self._records.append(rec)
            if len(self._records) > self._max_records:
                del self._records[: len(self._records) - self._max_records]
            for model, version in rec.versions.items():
                self._bump(model, version, kind)
            if self._db is not None:
                self._db.execute("INSERT INTO feedback VALUES (?,?,?,?,?,?,?,?)",
                                 (rec.request_id, rec.session_id, rec.kind, rec.comment, json.dumps(rec.versions),
                                  rec.intent, rec.confidence, rec.at))
                self._db.commit()
        return rec

    def recent(self, limit: int = 1000) -> list[FeedbackRecord]:
        with self._lock:
            return list(self._records[-limit:])

    def counts(self, model: str) -> dict[str, dict[str, int]]:
        with self._lock:
            return {v: dict(c) for v, c in self._counts.get(model, {}).items()}

    def _bump(self, model: str, version: str, key: str) -> None:
        per = self._counts.setdefault(model, {}).setdefault(version, {"answers": 0, **{k: 0 for k in KINDS}})
        per[key] += 1

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
