"""Stage 5c: cross-encoder rerank of the vector candidates -- or, when the budget cannot afford it, not.

The rerank is skipped (degraded ``rerank_skipped``, vector order kept) when the remaining budget is below
``max(budgets.rerank_min_remaining_ms, the observed rerank latency estimate)``, and also when the call
itself fails or runs out of time.

A call cut at its deadline only says "longer than the timeout", so the estimate alone would keep a slow
reranker tried (and cut) on every request. Instead a cut call backs the reranker off: it is skipped up front
until ``LatencyEstimate.backoff_s`` has passed, then one request probes it again. This matters on CPU:
Triton cannot abandon a started execution, so every cut call keeps burning CPU that the next requests'
classify/embed calls need (measured on 2 cores: 10 pairs ~650 ms against the 100 ms rerank budget).
"""

from __future__ import annotations

import time
from typing import Sequence

from server.backends.base import ModelBackend, check_rows
from server.errors import BackendError, BackendTimeout
from server.request import RequestContext
from server.retrieval.base import ScoredChunk
from server.settings import BudgetSettings

SKIPPED = "rerank_skipped"


class LatencyEstimate:
    """Exponentially weighted mean + 2 mean deviations (a cheap running ~p95) of observed latencies."""

    def __init__(self, alpha: float = 0.2, *, backoff_s: float = 5.0, clock=time.monotonic) -> None:
        self.alpha = alpha
        self.mean_ms: float | None = None
        self.dev_ms = 0.0
        self.backoff_s = backoff_s
        self._clock = clock
        self._cut_at: float | None = None  # when a call last ran out of time (None: the last call finished)

    def cut(self) -> None:
        """A call was cut at its deadline: skip up front for ``backoff_s``, then let one request probe."""
        self._cut_at = self._clock()

    def backing_off(self) -> bool:
        if self._cut_at is None:
            return False
        if self._clock() - self._cut_at >= self.backoff_s:
            self._cut_at = self._clock()  # this request is the probe; the others keep skipping meanwhile
            return False
        return True

    def finished(self) -> None:
        """A call completed: no back-off."""
        self._cut_at = None

    def observe(self, ms: float) -> None:
        if self.mean_ms is None:
            self.mean_ms = ms
            return
        self.dev_ms = (1 - self.alpha) * self.dev_ms + self.alpha * abs(ms - self.mean_ms)
        self.mean_ms = (1 - self.alpha) * self.mean_ms + self.alpha * ms

    def estimate_ms(self) -> float:
        return 0.0 if self.mean_ms is None else self.mean_ms + 2 * self.dev_ms


async def rerank(
    backend: ModelBackend,
    query: str,
    candidates: Sequence[ScoredChunk],
    top_k: int,
    ctx: RequestContext,
    *,
    budgets: BudgetSettings,
    estimate: LatencyEstimate,
    fusion_weight: float = 0.0,
) -> tuple[list[ScoredChunk], bool]:
    """(best ``top_k`` chunks, whether they were reranked). Reranked scores are the cross-encoder logit
    plus ``fusion_weight`` x the retrieval score."""
    if not candidates:
        return [], False
    needed_ms = max(budgets.rerank_min_remaining_ms, estimate.estimate_ms())
    if ctx.budget.remaining_ms() - ctx.budget.margin_s * 1000 < needed_ms or estimate.backing_off():
        ctx.degrade(SKIPPED)
        return list(candidates[:top_k]), False
    timeout_s = ctx.budget.timeout_for("rerank")
    start = time.perf_counter()
    try:
        with ctx.timings.stage("rerank"):
            scores = await backend.rerank(query, [c.chunk.text for c in candidates], timeout_s=timeout_s)
    except BackendError as err:
        estimate.observe((time.perf_counter() - start) * 1000)
        if isinstance(err, BackendTimeout):
            estimate.cut()
        ctx.degrade(SKIPPED)
        return list(candidates[:top_k]), False
    estimate.observe((time.perf_counter() - start) * 1000)
    estimate.finished()
    check_rows("reranker", scores, len(candidates), None)
    fused = [float(scores[i]) + fusion_weight * candidates[i].score for i in range(len(candidates))]
    order = sorted(range(len(candidates)), key=lambda i: fused[i], reverse=True)
    return [ScoredChunk(candidates[i].chunk, fused[i], reranked=True) for i in order[:top_k]], True
