"""Stage 5c: cross-encoder rerank of the vector candidates -- or, when the budget cannot afford it, not.

The rerank is skipped (degraded ``rerank_skipped``, vector order kept) when the remaining budget is below
``max(budgets.rerank_min_remaining_ms, the observed rerank latency estimate)``, and also when the call
itself fails or runs out of time. Timed-out calls feed the estimate, so a slow reranker is soon skipped
up front instead of costing its full budget on every request.
"""

from __future__ import annotations

import time
from typing import Sequence

from server.backends.base import ModelBackend, check_rows
from server.errors import BackendError
from server.request import RequestContext
from server.retrieval.base import ScoredChunk
from server.settings import BudgetSettings

SKIPPED = "rerank_skipped"


class LatencyEstimate:
    """Exponentially weighted mean + 2 mean deviations (a cheap running ~p95) of observed latencies."""

    def __init__(self, alpha: float = 0.2) -> None:
        self.alpha = alpha
        self.mean_ms: float | None = None
        self.dev_ms = 0.0

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
    if ctx.budget.remaining_ms() - ctx.budget.margin_s * 1000 < needed_ms:
        ctx.degrade(SKIPPED)
        return list(candidates[:top_k]), False
    timeout_s = ctx.budget.timeout_for("rerank")
    start = time.perf_counter()
    try:
        with ctx.timings.stage("rerank"):
            scores = await backend.rerank(query, [c.chunk.text for c in candidates], timeout_s=timeout_s)
    except BackendError:
        estimate.observe((time.perf_counter() - start) * 1000)
        ctx.degrade(SKIPPED)
        return list(candidates[:top_k]), False
    estimate.observe((time.perf_counter() - start) * 1000)
    check_rows("reranker", scores, len(candidates), None)
    fused = [float(scores[i]) + fusion_weight * candidates[i].score for i in range(len(candidates))]
    order = sorted(range(len(candidates)), key=lambda i: fused[i], reverse=True)
    return [ScoredChunk(candidates[i].chunk, fused[i], reranked=True) for i in order[:top_k]], True
