"""The traffic log's writer: off the critical path, bounded, redacted, and counting what it drops."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from server.guardrails.base import GuardrailAction
from server.guardrails.pii import PiiRedactor
from server.schema import ChatResult, Usage
from server.traffic.recorder import TrafficRecorder, Turn
from server.traffic.store import SQLiteTrafficStore

pytestmark = pytest.mark.L0


def result(rid: str = "r1", **kw) -> ChatResult:
    base = dict(answer="ok", intent="return_refund", intent_confidence=0.71, tier="small", model="m", request_id=rid,
                timings=(("classify", 3.25), ("answer", 40.0)), degraded=("rerank_skipped",),
                guardrail_actions=(GuardrailAction("pii", "redacted"),), usage=Usage(100, 20, 0.002))
    return ChatResult(**{**base, **kw})


def value(registry: CollectorRegistry, name: str, labels: dict | None = None) -> float:
    return registry.get_sample_value(name, labels or {}) or 0.0


class SlowStore(SQLiteTrafficStore):
    """A store whose writes block until released (a database that stalls)."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.release = threading.Event()

    def write(self, records):
        self.release.wait(5)
        return super().write(records)


class BrokenStore(SQLiteTrafficStore):
    def write(self, records):
        raise OSError("disk full")


async def test_a_turn_is_written_after_the_response_redacted_and_sketched():
    store, registry = SQLiteTrafficStore(), CollectorRegistry()
    redactor = PiiRedactor()
    rec = TrafficRecorder(store, registry, redact=lambda t: redactor.redact(t).text, embed_dim=8,
                          versions=None)
    rec.start()
    callbacks = []
    rec.defer(result(), session_id="s-1", message="mail me at jane.doe@example.com", vector=np.ones(8),
              stream=True, after_response=callbacks.append)
    await asyncio.sleep(0.05)
    assert store.count() == 0  # nothing before the response went out
    callbacks[0]()
    await rec.flush()
    (row,) = store.records()
    assert "jane.doe@example.com" not in row.message and row.message  # the raw PII never reaches the log
    assert row.session_hash and row.session_hash != "s-1"
    assert len(row.sketch) == 16 and row.stream and row.timings_ms == {"classify": 3.25, "answer": 40.0}
    assert row.guardrails == ("pii:redacted",) and row.degraded == ("rerank_skipped",)
    assert (row.intent, row.confidence, row.tier, row.input_tokens, row.output_tokens) == ("return_refund", 0.71, "small", 100, 20)
    assert value(registry, "mangaassist_llm_tokens_total", {"tier": "small", "direction": "input"}) == 100
    assert value(registry, "mangaassist_llm_cost_usd_total", {"tier": "small"}) == pytest.approx(0.002)
    await rec.stop()


async def test_a_full_queue_drops_and_counts_and_never_waits():
    store, registry = SlowStore(), CollectorRegistry()
    rec = TrafficRecorder(store, registry, maxsize=4, batch_size=1, embed_dim=8)
    rec.start()
    # submit is synchronous and the loop does not run between the 50 calls: a submit that waited for room (only
    # the writer frees it, and the database is stalled) would never return. The counts show each answered at once.
    assert not inspect.iscoroutinefunction(rec.submit)
    accepted = [rec.submit(Turn(result(f"r{i}"), "s", "m", None, False, time.time())) for i in range(50)]
    dropped = value(registry, "mangaassist_traffic_dropped_total", {"reason": "queue_full"})
    assert dropped == accepted.count(False) and dropped >= 40
    store.release.set()
    await rec.flush()
    assert store.count() == accepted.count(True)
    await rec.stop()


class DownStore(SQLiteTrafficStore):
    """A store that refuses writes while ``down`` is set (a database outage), then answers again."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.down = threading.Event()
        self.down.set()
        self.attempts = 0

    def write(self, records):
        self.attempts += 1
        if self.down.is_set():
            raise OSError("connection refused")
        return super().write(records)


async def test_a_failing_store_costs_no_answer_and_buffers_its_rows():
    registry = CollectorRegistry()
    rec = TrafficRecorder(BrokenStore(), registry, embed_dim=8, retry_s=60)
    rec.start()
    for i in range(3):
        assert rec.submit(Turn(result(f"r{i}"), "s", "m", None, False, time.time()))
    await rec.flush()
    assert value(registry, "mangaassist_traffic_retry_buffer") == 3
    assert value(registry, "mangaassist_traffic_dropped_total", {"reason": "store_error"}) == 0
    await rec.stop()  # the store never came back: the buffered rows are lost with the process, and counted
    assert value(registry, "mangaassist_traffic_dropped_total", {"reason": "shutdown"}) == 3


async def test_the_retry_buffer_is_bounded_and_drops_its_oldest_rows():
    registry = CollectorRegistry()
    rec = TrafficRecorder(BrokenStore(), registry, embed_dim=8, maxsize=4, batch_size=1, retry_s=60)
    rec.start()
    for i in range(6):
        assert rec.submit(Turn(result(f"r{i}"), "s", "m", None, False, time.time()))
        await rec.flush()
    assert value(registry, "mangaassist_traffic_retry_buffer") == 4
    assert value(registry, "mangaassist_traffic_dropped_total", {"reason": "store_error"}) == 2
    assert [r.request_id for r in rec._retry] == ["r2", "r3", "r4", "r5"]
    await rec.stop()


async def test_rows_buffered_during_an_outage_are_written_once_when_the_store_is_back():
    store, registry = DownStore(), CollectorRegistry()
    rec = TrafficRecorder(store, registry, embed_dim=8, retry_s=0.05)
    rec.start()
    for i in range(5):
        assert rec.submit(Turn(result(f"r{i}"), "s", "m", None, False, time.time()))
    await rec.flush()
    assert store.count() == 0 and value(registry, "mangaassist_traffic_retry_buffer") == 5
    store.down.clear()  # the database is back; no new turn arrives: the writer retries on its own
    for _ in range(100):
        if store.count() == 5:
            break
        await asyncio.sleep(0.05)
    assert sorted(r.request_id for r in store.records()) == [f"r{i}" for i in range(5)]
    assert value(registry, "mangaassist_traffic_retry_buffer") == 0 and store.attempts >= 2
    assert value(registry, "mangaassist_traffic_dropped_total", {"reason": "store_error"}) == 0
    await rec.stop()


async def test_retention_and_row_bound_are_applied_by_the_writer():
    store = SQLiteTrafficStore()
    now = [1_000_000.0]
    rec = TrafficRecorder(store, CollectorRegistry(), retention_days=1.0, max_rows=5, prune_interval_s=3600,
                          embed_dim=8, clock=lambda: now[0])
    for i in range(8):
        rec.submit(Turn(result(f"old{i}"), "s", "m", None, False, now[0] - 2 * 86400))  # two days old
    for i in range(8):
        rec.submit(Turn(result(f"new{i}"), "s", "m", None, False, now[0] - 8 + i))  # in time order
    rec.start()
    await rec.flush()
    assert store.count() == 16
    assert await rec.prune() == 11
    assert sorted(r.request_id for r in store.records()) == sorted(f"new{i}" for i in range(3, 8))  # the newest five
    await rec.stop()


async def test_stop_writes_what_is_queued_and_refuses_later_turns():
    store, registry = SQLiteTrafficStore(), CollectorRegistry()
    rec = TrafficRecorder(store, registry, embed_dim=8)
    rec.start()
    for i in range(20):
        rec.submit(Turn(result(f"r{i}"), "s", "m", None, False, time.time()))
    rows = store  # closed by stop(); count before
    await asyncio.sleep(0)
    await rec.stop()
    assert not rec.submit(Turn(result("late"), "s", "m", None, False, time.time()))
    assert value(registry, "mangaassist_traffic_dropped_total", {"reason": "stopped"}) == 1
    assert value(registry, "mangaassist_traffic_logged_total") == 20
    del rows
