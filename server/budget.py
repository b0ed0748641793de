"""The request's time budget: deadline = min(caller's gRPC deadline, the configured non-LLM budget).

Python gRPC does not propagate deadlines, so every model call asks the budget for its timeout:
``min(stage budget, remaining - margin)``. When nothing is left the budget raises
:class:`~server.errors.BudgetExceeded` (DEADLINE_EXCEEDED) instead of starting a call that cannot finish.

The configured budgets are a chat's: one text to classify, ``retrieval.rerank_top_n`` pairs to rerank. The
batch RPCs (Classify, Retrieve) have nothing to degrade to, so their budget (``Budget(..., batch=True)``)
follows the caller's gRPC deadline when the caller set one -- a 64-text Classify under a 10 s deadline may
take what it needs -- and without one the stage budget grows with the rows (:meth:`Budget.widen`:
``budgets.classify_per_text_ms`` per text after the first, ``budgets.rerank_per_pair_ms`` per pair beyond
the chat's), and the path's deadline with it.
"""

from __future__ import annotations

import math
import time

from server.errors import BudgetExceeded
from server.settings import BudgetSettings


class Budget:
    def __init__(
        self,
        budgets: BudgetSettings,
        *,
        caller_remaining_s: float | None,
        margin_ms: float,
        batch: bool = False,
    ) -> None:
        self._budgets = budgets
        self._extra_s: dict[str, float] = {}
        self.start = time.perf_counter()
        caller = caller_remaining_s if caller_remaining_s is not None else math.inf
        self.caller_deadline = self.start + max(caller, 0.0)
        #: a batch RPC under a caller's deadline: that deadline, not the chat's budgets, bounds every call
        self.follows_caller = batch and caller_remaining_s is not None
        self.deadline = self.caller_deadline if self.follows_caller else min(self.start + budgets.total_ms / 1000.0, self.caller_deadline)
        self.margin_s = margin_ms / 1000.0

    def widen(self, stage: str, extra_ms: float) -> None:
        """Give ``stage`` (and the path's deadline, still capped by the caller's) ``extra_ms`` more: a batch
        RPC's rows beyond the chat's. No effect on a budget that follows the caller's deadline."""
        if extra_ms <= 0 or self.follows_caller:
            return
        self._extra_s[stage] = self._extra_s.get(stage, 0.0) + extra_ms / 1000.0
        self.deadline = min(self.deadline + extra_ms / 1000.0, self.caller_deadline)

    def remaining_s(self) -> float:
        return self.deadline - time.perf_counter()

    def remaining_ms(self) -> float:
        return self.remaining_s() * 1000.0

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.start) * 1000.0

    def spent(self) -> bool:
        """True when no model call could still be made (less than the per-call margin left)."""
        return self.remaining_s() <= self.margin_s

    def timeout_for(self, stage: str) -> float:
        """Seconds to give one model call of ``stage``: min(stage budget, remaining - margin)."""
        left = self.remaining_s() - self.margin_s
        if left <= 0:
            raise BudgetExceeded(f"the request's budget was spent before the {stage} stage")
        if self.follows_caller:
            return left
        return min(self.stage_ms(stage) / 1000.0, left)

    def stage_ms(self, stage: str) -> float:
        """``stage``'s own budget: the configured one, widened for a batch RPC's rows."""
        return getattr(self._budgets, f"{stage}_ms") + self._extra_s.get(stage, 0.0) * 1000.0

    def answer_timeout(self) -> float:
        """Seconds for the answer stage: its own budget, bounded by the caller's deadline (not the path's)."""
        left = self.caller_deadline - time.perf_counter() - self.margin_s
        if left <= 0:
            raise BudgetExceeded("the caller's deadline passed before the answer stage")
        return min(self._budgets.answer_ms / 1000.0, left)
