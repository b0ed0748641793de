"""Stage 5c: cross-encoder rerank of the vector candidates -- or, when this chat cannot afford it, not.

**The decision is per chat**, from what is measured now (:class:`LatencyEstimate`):

- *expected* = the reranker's recent latency (an EWMA mean + 2 mean deviations of its recent calls: a running
  ~p95) x ``budgets.rerank_expected_margin``, plus ``budgets.rerank_queue_weight`` x that latency for every
  rerank call this process already has in flight (they share the reranker's instance and the cores);
- *affordable* = what this chat's call could be given: ``min(its rerank stage budget, remaining - margin)``.

The chat is skipped (degraded ``rerank_skipped``, vector order kept) when less than
``budgets.rerank_min_remaining_ms`` is left (decision ``skipped_budget``) or when *expected* > *affordable*
(``skipped_expected``) -- and only then: one slow call raises the estimate, it does not skip the chats that
still have the time for the reranker (the 5 s back-off it replaces did). Every decision is counted in
``mangaassist_rerank_decisions{decision}`` (:data:`DECISIONS`).

A reranker that is skipped produces no new measurements, so its estimate would never come down: when no rerank
call has ended for ``budgets.rerank_probe_after_s`` and none is in flight, one chat that has at least
``rerank_min_remaining_ms`` left calls it anyway (``probe``).

**A cut call does not keep the cores** where Triton can stop it: the call's gRPC deadline is its timeout, and
the client's cancellation at that deadline reaches Triton (r23.10+), which drops a cancelled request still
queued in the dynamic batcher and stops an ensemble between its steps (tokenizer -> ONNX model). An execution
already inside ONNX Runtime runs to its end -- neither cancellation nor a queue-policy timeout can reach it --
which is why the decision above does not start calls that cannot finish in the time the chat has.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

from server.backends.base import ModelBackend, check_rows
from server.errors import BackendError, BackendTimeout
from server.request import RequestContext
from server.retrieval.base import ScoredChunk
from server.settings import BudgetSettings

SKIPPED = "rerank_skipped"
#: what :func:`rerank` decided for one chat (the label of ``mangaassist_rerank_decisions``)
DECISIONS = ("reranked", "probe", "skipped_budget", "skipped_expected", "cut", "failed")


class LatencyEstimate:
    """What one rerank call is expected to take now: an exponentially weighted mean + 2 mean deviations (a
    cheap running ~p95) of the recent calls' latencies (a cut call counts with the time it ran, a lower
    bound), and the calls in flight to the reranker from this process (its share of Triton's queue)."""

    def __init__(self, alpha: float = 0.2, *, probe_after_s: float = 1.0, clock=time.monotonic,
                 on_decision: Callable[[str], None] | None = None) -> None:
        self.alpha = alpha
        self.mean_ms: float | None = None
        self.dev_ms = 0.0
        self.probe_after_s = probe_after_s
        self.in_flight = 0
        self.decisions: dict[str, int] = dict.fromkeys(DECISIONS, 0)
        self._clock = clock
        self._last_at: float | None = None  # when the last measurement arrived
        self._on_decision = on_decision

    def observe(self, ms: float) -> None:
        self._last_at = self._clock()
        if self.mean_ms is None:
            self.mean_ms = ms
            return
        self.dev_ms = (1 - self.alpha) * self.dev_ms + self.alpha * abs(ms - self.mean_ms)
        self.mean_ms = (1 - self.alpha) * self.mean_ms + self.alpha * ms

    def estimate_ms(self) -> float:
        """One call on its own (0 before any measurement)."""
        return 0.0 if self.mean_ms is None else self.mean_ms + 2 * self.dev_ms

    def expected_ms(self, budgets: BudgetSettings) -> float:
        """One more call now: the estimate with its margin, plus the calls already in flight."""
        one = self.estimate_ms()
        return one * budgets.rerank_expected_margin + budgets.rerank_queue_weight * one * self.in_flight

    def stale(self) -> bool:
        """Nothing measured for ``probe_after_s`` and no call in flight: the estimate is too old to trust."""
        return (self.in_flight == 0 and self._last_at is not None
                and self._clock() - self._last_at >= self.probe_after_s)

    def decide(self, ctx: RequestContext, budgets: BudgetSettings) -> str:
        """``reranked`` (call it), ``probe`` (call it although the estimate says no) or a ``skipped_*``."""
        left_ms = ctx.budget.remaining_ms() - ctx.budget.margin_s * 1000
        if left_ms < budgets.rerank_min_remaining_ms:
            return "skipped_budget"
        # what timeout_for("rerank") would give the call (a batch RPC under a caller's deadline: all that is left)
        affordable_ms = left_ms if ctx.budget.follows_caller else min(ctx.budget.stage_ms("rerank"), left_ms)
        if self.expected_ms(budgets) <= affordable_ms:
            return "reranked"
        return "probe" if self.stale() else "skipped_expected"

    def count(self, decision: str) -> None:
        self.decisions[decision] += 1
        if self._on_decision is not None:
            self._on_decision(decision)


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
    decision = estimate.decide(ctx, budgets)
    if decision.startswith("skipped"):
        estimate.count(decision)
        ctx.degrade(SKIPPED)
        return list(candidates[:top_k]), False
    timeout_s = ctx.budget.timeout_for("rerank")
    start = time.perf_counter()
    estimate.in_flight += 1
    try:
        with ctx.timings.stage("rerank"):
            scores = await backend.rerank(query, [c.chunk.text for c in candidates], timeout_s=timeout_s)
    except BackendError as err:
        estimate.observe((time.perf_counter() - start) * 1000)
        estimate.count("cut" if isinstance(err, BackendTimeout) else "failed")
        ctx.degrade(SKIPPED)
        return list(candidates[:top_k]), False
    finally:
        estimate.in_flight -= 1
    estimate.observe((time.perf_counter() - start) * 1000)
    estimate.count(decision)
    check_rows("reranker", scores, len(candidates), None)
    fused = [float(scores[i]) + fusion_weight * candidates[i].score for i in range(len(candidates))]
    order = sorted(range(len(candidates)), key=lambda i: fused[i], reverse=True)
    return [ScoredChunk(candidates[i].chunk, fused[i], reranked=True) for i in order[:top_k]], True
