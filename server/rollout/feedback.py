"""Customer feedback on answers (the ``Feedback`` RPC), attributed to the model versions that answered.

API (the service writes; the canary guards, the metrics and the drift/traffic-log work read)::

    store = FeedbackStore(window=100_000, db_path="")       # db_path: SQLite file ("" = memory only)
    store.remember(request_id, session_id, versions={"intent_classifier_onnx": "2"}, intent=..., confidence=...)
    rec = store.record(request_id, session_id, kind, comment)  # -> FeedbackRecord | None (unknown/too old id)
    store.answer(request_id) -> Answer | None                # what answered that request
    store.recent(limit=1000) -> list[FeedbackRecord]         # newest last
    store.counts(model) -> {version: {"answers": n, "thumbs_up": n, "thumbs_down": n, "escalated": n}}

The service calls the ``a*`` forms (:meth:`FeedbackStore.aremember`, :meth:`FeedbackStore.arecord`): with
``state.backend: redis`` the store is a :class:`SharedFeedbackStore`, whose attribution records live in Redis for
``state.feedback_ttl_s``, so a Feedback that lands on another replica than the answer is still attributed.

``kind`` is ``"thumbs_up" | "thumbs_down" | "escalated"`` (:data:`KINDS`). Comments are PII-redacted before they
are kept. With ``db_path`` every record is appended to table ``feedback`` (request_id, session_id, kind, comment,
versions JSON, intent, confidence, at) -- the table the traffic log / drift jobs read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Mapping

log = logging.getLogger(__name__)

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

    # -- the service's entry points (async: the shared store's are Redis calls) --
    async def aremember(self, request_id: str, session_id: str, *, versions: Mapping[str, str], intent: str = "",
                        confidence: float = 0.0) -> None:
        self.remember(request_id, session_id, versions=versions, intent=intent, confidence=confidence)

    async def arecord(self, request_id: str, session_id: str, kind: str, comment: str = "") -> FeedbackRecord | None:
        return self.record(request_id, session_id, kind, comment)

    async def aclose(self) -> None:
        self.close()

    def _bump(self, model: str, version: str, key: str) -> None:
        per = self._counts.setdefault(model, {}).setdefault(version, {"answers": 0, **{k: 0 for k in KINDS}})
        per[key] += 1

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class SharedFeedbackStore(FeedbackStore):
    """The attribution records in Redis (``<prefix>answer:<request_id>``, JSON, expiring after ``ttl_s``), written
    before the answer goes out: a Feedback for it is attributed on whichever replica it lands. This replica also
    keeps its own answers in memory (as :class:`FeedbackStore`), so its own feedback costs no round trip. Every Redis
    call is bounded by ``timeout_ms``; an outage never fails a chat (the record is only local, counted in
    ``unavailable``) and makes a Feedback for another replica's answer ``recorded=false``."""

    def __init__(self, url: str, *, key_prefix: str = "mangaassist:", ttl_s: float = 7 * 86400.0,
                 timeout_ms: float = 50.0, window: int = 100_000, db_path: str = "", client: object = None) -> None:
        super().__init__(window=window, db_path=db_path)
        import redis.asyncio as aioredis

        self.prefix, self.ttl_s, self.timeout_s = key_prefix + "answer:", ttl_s, timeout_ms / 1000.0
        self.unavailable = 0  # Redis calls that failed or timed out
        self._redis = client or aioredis.from_url(url, socket_timeout=self.timeout_s,
                                                  socket_connect_timeout=self.timeout_s, retry_on_timeout=False)

    async def _bounded(self, call: object) -> object:
        import redis.exceptions

        try:
            return await asyncio.wait_for(call, self.timeout_s)  # type: ignore[arg-type]
        except (asyncio.TimeoutError, redis.exceptions.RedisError, OSError) as err:
            self.unavailable += 1
            log.warning("feedback store: Redis unavailable (%s)", type(err).__name__)
            raise LookupError from None

    async def aremember(self, request_id: str, session_id: str, *, versions: Mapping[str, str], intent: str = "",
                        confidence: float = 0.0) -> None:
        self.remember(request_id, session_id, versions=versions, intent=intent, confidence=confidence)
        if not request_id:
            return
        payload = json.dumps({"session_id": session_id, "versions": dict(versions), "intent": intent,
                              "confidence": confidence, "at": time.time()}, separators=(",", ":"))
        try:
            await self._bounded(self._redis.set(self.prefix + request_id, payload, ex=max(1, int(self.ttl_s))))
        except LookupError:
            pass  # attributed on this replica only

    async def arecord(self, request_id: str, session_id: str, kind: str, comment: str = "") -> FeedbackRecord | None:
        if kind not in KINDS:
            raise ValueError(f"feedback kind {kind!r}; expected one of {KINDS}")
        if request_id and self.answer(request_id) is None:
            try:
                raw = await self._bounded(self._redis.get(self.prefix + request_id))
            except LookupError:
                return None
            if raw is None:
                return None
            d = json.loads(raw)
            with self._lock:  # another replica's answer: known here now (not counted as this replica's answer)
                self._answers[request_id] = Answer(request_id, d.get("session_id", ""), dict(d.get("versions") or {}),
                                                   d.get("intent", ""), float(d.get("confidence", 0.0)),
                                                   float(d.get("at", 0.0)))
                while len(self._answers) > self.window:
                    self._answers.popitem(last=False)
        return self.record(request_id, session_id, kind, comment)

    async def aclose(self) -> None:
        self.close()
        await self._redis.aclose()
