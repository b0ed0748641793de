"""Async hallucination scoring off the critical path: a bounded queue drained by background workers.

``submit(job)`` is called on the request path and never waits: ``put_nowait`` into an
``asyncio.Queue(maxsize)``; when the queue is full (or the queue is stopping) the job is dropped and
``mangaassist_hallucination_dropped_total{reason}`` counts it -- scoring is best-effort, latency is not.
Workers score each answer after the response went out, then act on the score (thresholds from
``guardrails.hallucination_alert`` / ``hallucination_block``):

* every answer: ``mangaassist_hallucination_score`` histogram, today's mean score gauge, and
  ``mangaassist_hallucination_daily_avg_alert`` = 1 while today's (UTC) mean exceeds ``hallucination_daily_avg_alert``;
* score >= alert (0.5): ``mangaassist_hallucination_alerts_total`` + a row in the review queue;
* score >= block (when set; the service's default is alert-only, no block): the session is blocked for ``hallucination_block_ttl_s`` -- in the session store (``blocks``: every
  pod sharing it sees the block, read in the chat's one store call) or, with no store or during an outage, in
  this process (``is_session_blocked``); the request path checks it before answering the next message.

Lifecycle: ``start()`` spawns the workers on the running loop; ``stop(drain=True)`` stops accepting,
lets the queue empty for up to ``guardrails.hallucination_drain_timeout_s``, then cancels the workers (what is left is counted
as dropped, reason ``shutdown``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from server.errors import SessionUnavailable
from server.hallucination.metrics import HallucinationMetrics, for_registry
from server.hallucination.scorer import HallucinationResult, HallucinationScorer
from server.request import request_id_bound
from server.settings import GuardrailSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HallucinationConfig:
    """What the queue acts on, under the names it uses: a read-only view of ``settings.guardrails`` (the
    ``hallucination_*`` fields are the one home of these values; none is restated here)."""

    guardrails: GuardrailSettings = field(default_factory=GuardrailSettings)

    alert_threshold = property(lambda self: self.guardrails.hallucination_alert)
    block_threshold = property(lambda self: self.guardrails.hallucination_block)  # None: alert-only
    daily_avg_threshold = property(lambda self: self.guardrails.hallucination_daily_avg_alert)
    daily_avg_min_samples = property(lambda self: self.guardrails.hallucination_daily_avg_min_samples)
    block_ttl_s = property(lambda self: self.guardrails.hallucination_block_ttl_s)
    max_blocked_sessions = property(lambda self: self.guardrails.hallucination_max_blocked_sessions)
    job_timeout_s = property(lambda self: self.guardrails.hallucination_job_timeout_s)
    drain_timeout_s = property(lambda self: self.guardrails.hallucination_drain_timeout_s)
    review_sources = property(lambda self: self.guardrails.hallucination_review_sources)

    @classmethod
    def from_settings(cls, settings: Any) -> "HallucinationConfig":
        """The view of ``settings.guardrails`` (the service settings or that section itself)."""
        return cls(getattr(settings, "guardrails", settings))


@dataclass(frozen=True)
class ScoringJob:
    session_id: str
    request_id: str
    answer: str
    sources: tuple[Any, ...] = ()  # retrieved chunks (ScoredChunk / Chunk / str)
    products: tuple[Any, ...] = ()  # products in play (Product / catalog dict / ASIN)
    tier: str = ""
    submitted_at: float = field(default_factory=time.monotonic)


class DailyAverage:
    """Running mean of today's scores; resets when the UTC day changes."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.day = int(clock() // 86400)
        self.total = 0.0
        self.count = 0

    def add(self, score: float) -> float:
        day = int(self.clock() // 86400)
        if day != self.day:
            self.day, self.total, self.count = day, 0.0, 0
        self.total += score
        self.count += 1
        return self.mean

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


class ScoringQueue:
    def __init__(
        self,
        scorer: HallucinationScorer,
        review_store: Any | None,
        metrics: Any = None,
        maxsize: int = 256,
        workers: int = 1,
        *,
        config: HallucinationConfig | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``review_store``: a :class:`~server.hallucination.review.ReviewQueue` (or None: alerts only);
        ``metrics``: the service's ``Metrics``, a CollectorRegistry or a HallucinationMetrics; ``config``: the
        thresholds and limits (default: ``settings.guardrails``' defaults: alert-only)."""
        if maxsize < 1 or workers < 1:
            raise ValueError("maxsize and workers must be >= 1")
        self.scorer = scorer
        self.review_store = review_store
        self.metrics: HallucinationMetrics = for_registry(metrics)
        self.maxsize = maxsize
        self.n_workers = workers
        self.config = config or HallucinationConfig()
        self.daily = DailyAverage(clock)
        self._monotonic = monotonic
        self._queue: asyncio.Queue[ScoringJob] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._accepting = True
        self._blocked: collections.OrderedDict[str, float] = collections.OrderedDict()
        #: where blocks live when the service has a session store (server/sessions): a block set on one pod then
        #: holds on every pod sharing the store; None (or a store outage) -> this process's own list
        self.blocks: Any | None = None
        self.last_result: HallucinationResult | None = None
        #: ``(request_id, score)`` after each scored answer: the service attaches the score to the traffic log's row
        self.on_scored: Callable[[str, float], None] | None = None

    # ------------------------------------------------------------------ request path
    def submit(self, job: ScoringJob) -> bool:
        """Queue ``job`` for scoring; never blocks or raises. False when it was dropped."""
        try:
            if not self._accepting:
                self.metrics.dropped.labels("stopped").inc()
                return False
            queue = self._ensure_queue()
            queue.put_nowait(job)
            self.metrics.queue_depth.set(queue.qsize())
            return True
        except asyncio.QueueFull:
            self.metrics.dropped.labels("queue_full").inc()
            return False
        except Exception:  # noqa: BLE001 -- best-effort by contract: the caller's answer must not fail
            log.exception("hallucination submit failed; this is a bug")
            self.metrics.dropped.labels("error").inc()
            return False

    def is_session_blocked(self, session_id: str) -> bool:
        if not session_id:
            return False
        expiry = self._blocked.get(session_id)
        if expiry is None:
            return False
        if expiry <= self._monotonic():
            self._blocked.pop(session_id, None)
            self.metrics.blocked_sessions.set(len(self._blocked))
            return False
        return True

    def unblock_session(self, session_id: str) -> bool:
        found = self._blocked.pop(session_id, None) is not None
        self.metrics.blocked_sessions.set(len(self._blocked))
        return found

    @property
    def depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Spawn the workers on the running event loop (idempotent)."""
        if self._tasks:
            return
        self._accepting = True
        queue = self._ensure_queue()
        self._tasks = [asyncio.create_task(self._worker(queue), name=f"hallucination-worker-{i}") for i in range(self.n_workers)]

    async def stop(self, drain: bool = True, timeout_s: float | None = None) -> None:
        """Stop accepting; with ``drain`` wait (up to ``timeout_s``, default ``config.drain_timeout_s``) for
        queued jobs to be scored; then cancel the workers. Leftover jobs count as dropped (``shutdown``)."""
        self._accepting = False
        queue = self._queue
        if drain and queue is not None and self._tasks:
            timeout = self.config.drain_timeout_s if timeout_s is None else timeout_s
            try:
                await asyncio.wait_for(queue.join(), timeout)
            except asyncio.TimeoutError:
                log.warning("hallucination queue: %d jobs left after %.1fs drain", queue.qsize(), timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if queue is not None:
            left = 0
            while not queue.empty():
                queue.get_nowait()
                queue.task_done()
                left += 1
            if left:
                self.metrics.dropped.labels("shutdown").inc(left)
            self.metrics.queue_depth.set(0)

    # ------------------------------------------------------------------ workers
    def _ensure_queue(self) -> asyncio.Queue[ScoringJob]:
        if self._queue is None:
            self._queue = asyncio.Queue(self.maxsize)
        return self._queue

    async def _worker(self, queue: asyncio.Queue[ScoringJob]) -> None:
        while True:
            job = await queue.get()
            try:
                await self._process(job)
            except asyncio.CancelledError:
                raise
            except asyncio.TimeoutError:
                self.metrics.jobs.labels("timeout").inc()
                log.warning("hallucination scoring of %s timed out after %.1fs", job.request_id, self.config.job_timeout_s)
            except Exception:  # noqa: BLE001 -- one bad job (backend down, odd answer) must not kill the worker
                self.metrics.jobs.labels("error").inc()
                log.exception("hallucination scoring of %s failed", job.request_id)
            finally:
                queue.task_done()
                self.metrics.queue_depth.set(queue.qsize())

    async def _process(self, job: ScoringJob) -> HallucinationResult:
        started = time.perf_counter()
        with request_id_bound(job.request_id):  # the scorer's Triton calls carry the chat's request id
            result = await asyncio.wait_for(
                self.scorer.score(job.answer, sources=job.sources, products=job.products), self.config.job_timeout_s
            )
        self.metrics.seconds.observe(time.perf_counter() - started)
        await self.record(job, result)
        return result

    async def record(self, job: ScoringJob, result: HallucinationResult) -> None:
        """Metrics and threshold actions for one scored answer."""
        cfg = self.config
        m = self.metrics
        self.last_result = result
        score = float(result.score)
        m.jobs.labels("scored" if result.claims else "no_claims").inc()
        m.score.observe(score)
        if self.on_scored is not None:
            try:
                self.on_scored(job.request_id, score)
            except Exception:  # noqa: BLE001 -- the log is best-effort
                log.exception("hallucination on_scored hook failed; this is a bug")
        mean = self.daily.add(score)
        m.daily_avg.set(mean)
        m.daily_avg_alert.set(1 if self.daily.count >= cfg.daily_avg_min_samples and mean > cfg.daily_avg_threshold else 0)
        if score >= cfg.alert_threshold:
            m.alerts.inc()
            worst = result.worst
            log.warning(
                "hallucination alert: session=%s request=%s score=%.3f claim=%r",
                job.session_id, job.request_id, score, worst.claim if worst else "",
            )
            if self.review_store is not None:
                sources = [worst.source] if worst else []
                sources += [c.source for c in result.claims if c.source not in sources]
                await asyncio.to_thread(
                    self.review_store.add, job.session_id, job.request_id, job.answer,
                    worst.claim if worst else "", score, sources[: cfg.review_sources],
                )
        if cfg.block_threshold is not None and score >= cfg.block_threshold:
            m.blocks.inc()
            await self._block(job.session_id)

    async def _block(self, session_id: str) -> None:
        if not session_id:
            return
        if self.blocks is not None:
            try:
                await self.blocks.block(session_id, self.config.block_ttl_s)
                return
            except SessionUnavailable:
                log.warning("session store unavailable: blocking session %s on this pod only", session_id)
        self._blocked.pop(session_id, None)
        self._blocked[session_id] = self._monotonic() + self.config.block_ttl_s
        while len(self._blocked) > self.config.max_blocked_sessions:
            self._blocked.popitem(last=False)
        self.metrics.blocked_sessions.set(len(self._blocked))


# ------------------------------------------------------------------------------------------ integration
SubmitHook = Callable[..., None]


def make_submit_hook(queue: ScoringQueue, *, skip_tiers: Sequence[str] = ("template",)) -> SubmitHook:
    """``hook(result, *, session_id, chunks=(), products=())`` for the request path.

    ``result``: the ChatResult (uses ``answer``, ``request_id``, ``tier``, ``blocked``); ``chunks``: the
    retrieved ScoredChunks the answer was generated from; ``products``: the products in play (the
    pipeline's ``facts.products``); the ASINs of ``result.cards`` are added (resolved by the scorer's catalog). Blocked answers, empty answers and ``skip_tiers`` (template answers
    are rendered from catalog/order records, grounded by construction) are not scored. Never raises.
    """
    skip = frozenset(skip_tiers)

    def hook(result: Any, *, session_id: str = "", chunks: Sequence[Any] = (), products: Sequence[Any] = ()) -> None:
        try:
            answer = getattr(result, "answer", "") or ""
            tier = getattr(result, "tier", "") or ""
            if not answer.strip() or getattr(result, "blocked", False) or tier in skip:
                return
            in_play = list(products)  # + the products on the answer's cards (ASINs; the scorer's catalog resolves them)
            known = {getattr(p, "asin", p) for p in in_play}
            in_play += [c.asin for c in getattr(result, "cards", ()) if getattr(c, "asin", None) and c.asin not in known]
            queue.submit(
                ScoringJob(
                    session_id=session_id or "",
                    request_id=getattr(result, "request_id", "") or "",
                    answer=answer,
                    sources=tuple(chunks),
                    products=tuple(in_play),
                    tier=tier,
                )
            )
        except Exception:  # noqa: BLE001 -- never fail (or slow) the caller's answer
            log.exception("hallucination hook failed; this is a bug")

    return hook
