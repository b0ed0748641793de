"""The traffic log's writer: every answered Chat/ChatStream turn, recorded after the response went out.

Request path cost: one ``put_nowait`` of the turn's already-built objects in the servicer's RPC-done callback
(``defer``); nothing is built, hashed, projected or written there. A full queue drops the turn and counts it
(``mangaassist_traffic_dropped_total{reason="queue_full"}``): the log is best-effort, latency is not.

A background task takes turns off the queue in batches, builds :class:`TrafficRecord` s (session hash, embedding
sketch, the message redacted once more) and writes them with the store's blocking client in a worker thread;
a failing store keeps the batch's records in a bounded retry buffer (``maxsize`` records, the gauge
``mangaassist_traffic_retry_buffer``) and writes them first once the store answers again (tried with the next
batch, or every ``retry_s`` while no turn arrives); when the buffer is full its oldest records are dropped and
counted (``reason="store_error"``). A chat never waits on any of it. Every
``prune_interval_s`` it applies the retention (``retention_days``) and the row bound (``max_rows``).

Token and cost accounting per tier (``mangaassist_llm_tokens_total{tier,direction}``,
``mangaassist_llm_cost_usd_total{tier}``) is counted in ``defer`` too, so it holds with the log off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from contracts.models import EMBED_DIM
from server.traffic.metrics import TrafficMetrics, for_registry
from server.traffic.record import Sketcher, TrafficRecord, actions_of, session_hash
from server.traffic.store import TrafficStore

log = logging.getLogger(__name__)

AfterResponse = Callable[[Callable[[], None]], None]


@dataclass(frozen=True)
class Turn:
    """What the pipeline hands over: its own objects, untouched (built into a record by the writer)."""

    result: Any  # server.schema.ChatResult
    session_id: str
    message: str  # the input guardrail's redaction
    vector: Any  # the base query embedding (np.ndarray) or None
    stream: bool
    ts: float


class TrafficRecorder:
    def __init__(
        self,
        store: TrafficStore | None,
        metrics: Any = None,
        *,
        maxsize: int = 1024,
        batch_size: int = 200,
        retention_days: float = 30.0,
        max_rows: int = 1_000_000,
        prune_interval_s: float = 600.0,
        embed_dim: int = EMBED_DIM,
        redact: Callable[[str], str] | None = None,
        versions: Callable[[], Any] | None = None,
        versions_interval_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        retry_s: float = 1.0,
    ) -> None:
        """``redact``: text -> text (the PII redactor, applied again off the path); ``versions``: an async
        callable returning the served model versions (records carry them unless the result names its own)."""
        if maxsize < 1 or batch_size < 1:
            raise ValueError("maxsize and batch_size must be >= 1")
        self.store = store
        self.metrics: TrafficMetrics = for_registry(metrics)
        self.maxsize, self.batch_size = maxsize, batch_size
        self.retention_s = retention_days * 86400.0
        self.max_rows = max_rows
        self.prune_interval_s = prune_interval_s
        self.sketch = Sketcher(embed_dim)
        self.redact = redact or (lambda text: text)
        self._versions_fn = versions
        self.versions_interval_s = versions_interval_s
        self.model_versions: Mapping[str, str] = {}
        self.clock = clock
        self._queue: asyncio.Queue[Turn] | None = None
        self._task: asyncio.Task[None] | None = None
        self._accepting = True
        self._last_prune = 0.0
        self._last_versions = float("-inf")
        self._feedback_tasks: set[asyncio.Task[bool]] = set()
        self.retry_s = retry_s
        self._retry: deque[TrafficRecord] = deque()  # records a failed write kept for the store's return

    # ------------------------------------------------------------------ request path (after the response)
    def defer(
        self, result: Any, *, session_id: str, message: str, vector: Any, stream: bool, after_response: AfterResponse | None
    ) -> None:
        """Record this turn once the response is out (at once without ``after_response``). Never raises."""

        def job() -> None:
            self.submit(Turn(result, session_id, message, vector, stream, self.clock()))

        try:
            if after_response is None:
                job()
            else:
                after_response(job)
        except Exception:  # noqa: BLE001 -- the log is best-effort; the answer must not fail
            log.exception("could not defer the traffic log; this is a bug")

    def submit(self, turn: Turn) -> bool:
        """Count the turn's tokens and cost, queue it for the log; False when it was dropped."""
        try:
            self._count_usage(turn.result)
            if self.store is None:
                return False
            if not self._accepting:
                self.metrics.dropped.labels("stopped").inc()
                return False
            queue = self._ensure_queue()
            queue.put_nowait(turn)
            self.metrics.queue_depth.set(queue.qsize())
            return True
        except asyncio.QueueFull:
            self.metrics.dropped.labels("queue_full").inc()
            return False
        except Exception:  # noqa: BLE001
            log.exception("traffic submit failed; this is a bug")
            self.metrics.dropped.labels("error").inc()
            return False

    def _count_usage(self, result: Any) -> None:
        usage, tier = getattr(result, "usage", None), getattr(result, "tier", "") or "unknown"
        if usage is None:
            return
        if usage.input_tokens:
            self.metrics.tokens.labels(tier, "input").inc(usage.input_tokens)
        if usage.output_tokens:
            self.metrics.tokens.labels(tier, "output").inc(usage.output_tokens)
        self.metrics.cost.labels(tier).inc(max(0.0, float(usage.cost_usd)))
        self.metrics.answers.labels(tier).inc()

    # ------------------------------------------------------------------ the writer
    def record_of(self, turn: Turn) -> TrafficRecord:
        r = turn.result
        return TrafficRecord(
            ts=turn.ts,
            request_id=r.request_id,
            session_hash=session_hash(turn.session_id),
            model_versions=dict(getattr(r, "model_versions", None) or self.model_versions),
            intent=r.intent,
            confidence=float(r.intent_confidence),
            rule_decided=bool(r.rule_decided),
            tier=r.tier,
            model=r.model,
            timings_ms={stage: round(ms, 3) for stage, ms in r.timings},
            degraded=tuple(r.degraded),
            guardrails=actions_of(r.guardrail_actions),
            message=self.redact(turn.message),
            sketch=self.sketch(turn.vector),
            input_tokens=r.usage.input_tokens,
            output_tokens=r.usage.output_tokens,
            cost_usd=float(r.usage.cost_usd),
            blocked=bool(r.blocked),
            stream=turn.stream,
        )

    def start(self) -> None:
        if self._task is None and self.store is not None:
            self._accepting = True
            self._task = asyncio.create_task(self._run(self._ensure_queue()), name="traffic-log-writer")

    async def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Stop accepting, write what is queued (bounded), close the store."""
        self._accepting = False
        queue = self._queue
        if self._task is not None and queue is not None:
            try:
                await asyncio.wait_for(queue.join(), drain_timeout_s)
            except asyncio.TimeoutError:
                log.warning("traffic log: %d turns left after %.1fs drain", queue.qsize(), drain_timeout_s)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if queue is not None and not queue.empty():
            left = queue.qsize()
            while not queue.empty():
                queue.get_nowait()
                queue.task_done()
            self.metrics.dropped.labels("shutdown").inc(left)
        if self._retry:  # the store never came back: these rows are lost with the process
            self.metrics.dropped.labels("shutdown").inc(len(self._retry))
            self._retry.clear()
            self.metrics.retry_buffer.set(0)
        if self.store is not None:
            await asyncio.to_thread(self.store.close)

    async def flush(self) -> None:
        """Wait until everything queued so far is written (tests, simulations)."""
        if self._queue is not None and self._task is not None:
            await self._queue.join()

    async def _run(self, queue: asyncio.Queue[Turn]) -> None:
        while True:
            await self._housekeeping()
            try:
                wait = self.retry_s if self._retry else self.prune_interval_s
                first = await asyncio.wait_for(queue.get(), timeout=wait)
            except asyncio.TimeoutError:
                if self._retry:
                    await self._write([])  # the store may be back: the buffered records first
                continue
            batch = [first]
            while len(batch) < self.batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    queue.task_done()
                self.metrics.queue_depth.set(queue.qsize())

    async def _write(self, batch: list[Turn]) -> None:
        assert self.store is not None
        try:
            records = [self.record_of(t) for t in batch]
        except Exception as err:  # noqa: BLE001 -- a turn that cannot be recorded costs its row, never an answer
            log.warning("traffic log: could not build %d records: %r", len(batch), err)
            self.metrics.dropped.labels("error").inc(len(batch))
            return
        pending = [*self._retry, *records]
        if not pending:
            return
        try:
            started = time.perf_counter()
            await asyncio.to_thread(self.store.write, pending)
            self.metrics.write_seconds.observe(time.perf_counter() - started)
            self.metrics.logged.inc(len(pending))
            if self._retry:
                log.info("traffic log: the store is back, wrote %d buffered records", len(self._retry))
            self._retry.clear()
        except Exception as err:  # noqa: BLE001 -- a store outage costs log rows, never answers
            if not self._retry:
                log.warning("traffic log: store write failed, buffering up to %d records: %r", self.maxsize, err)
            self._retry = deque(pending)
            overflow = len(self._retry) - self.maxsize
            for _ in range(max(0, overflow)):
                self._retry.popleft()
            if overflow > 0:
                self.metrics.dropped.labels("store_error").inc(overflow)
        finally:
            self.metrics.retry_buffer.set(len(self._retry))

    async def _housekeeping(self) -> None:
        now = self.clock()
        if self._versions_fn is not None and time.monotonic() - self._last_versions >= self.versions_interval_s:
            self._last_versions = time.monotonic()
            try:
                self.model_versions = dict(await asyncio.wait_for(self._versions_fn(), 2.0))
            except Exception as err:  # noqa: BLE001 -- keep the last known versions
                log.info("traffic log: model versions unavailable: %r", err)
        if self.store is not None and now - self._last_prune >= self.prune_interval_s:
            self._last_prune = now
            await self.prune(now)

    async def prune(self, now: float | None = None) -> int:
        assert self.store is not None
        now = self.clock() if now is None else now
        try:
            deleted = await asyncio.to_thread(self.store.prune, now - self.retention_s, self.max_rows)
        except Exception as err:  # noqa: BLE001
            log.warning("traffic log: prune failed: %r", err)
            return 0
        self.metrics.pruned.inc(deleted)
        return deleted

    def _ensure_queue(self) -> asyncio.Queue[Turn]:
        if self._queue is None:
            self._queue = asyncio.Queue(maxsize=self.maxsize)
        return self._queue

    # ------------------------------------------------------------------ the Feedback RPC's hook
    def feedback_later(self, request_id: str, kind: str) -> None:
        """Attach the Feedback RPC's verdict to the logged turn, in the background (the RPC does not wait)."""
        if self.store is None:
            return
        task = asyncio.get_running_loop().create_task(self.feedback(request_id, kind))
        self._feedback_tasks.add(task)
        task.add_done_callback(self._feedback_tasks.discard)

    async def feedback(self, request_id: str, kind: str, attempts: int = 3, retry_s: float = 1.0) -> bool:
        """``kind``: the RPC's ``thumbs_up`` | ``thumbs_down`` | ``escalated``. A verdict can arrive before the
        writer's batch with its turn: tried again ``attempts`` times, ``retry_s`` apart."""
        return await self._attach("feedback", request_id, kind, attempts, retry_s)

    # ------------------------------------------------------------------ the hallucination scorer's hook
    def hallucination_later(self, request_id: str, score: float) -> None:
        """Attach the async scorer's score to the logged turn (the reversal trigger's per-intent rate reads it)."""
        if self.store is None or not request_id:
            return
        task = asyncio.get_running_loop().create_task(self.hallucination(request_id, score))
        self._feedback_tasks.add(task)
        task.add_done_callback(self._feedback_tasks.discard)

    async def hallucination(self, request_id: str, score: float, attempts: int = 3, retry_s: float = 1.0) -> bool:
        return await self._attach("hallucination", request_id, score, attempts, retry_s)

    async def _attach(self, column: str, request_id: str, value: Any, attempts: int, retry_s: float) -> bool:
        if self.store is None:
            return False
        setter = self.store.set_feedback if column == "feedback" else self.store.set_hallucination
        for attempt in range(attempts):
            try:
                if await asyncio.to_thread(setter, request_id, value):
                    return True
            except Exception as err:  # noqa: BLE001
                log.warning("traffic log: %s for %s not stored: %r", column, request_id, err)
                return False
            if attempt + 1 < attempts:
                await asyncio.sleep(retry_s)
        return False
