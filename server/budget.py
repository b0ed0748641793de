"""The request's time budget: deadline = min(caller's gRPC deadline, the configured non-LLM budget).

Python gRPC does not propagate deadlines, so every model call asks the budget for its timeout:
``min(stage budget, remaining - margin)``. When nothing is left the budget raises
:class:`~server.errors.BudgetExceeded` (DEADLINE_EXCEEDED) instead of starting a call that cannot finish.
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
    ) -> None:
        self._budgets = budgets
        self.start = time.perf_counter()
        caller = caller_remaining_s if caller_remaining_s is not None else math.inf
        self.caller_deadline = self.start + max(caller, 0.0)
        self.deadline = min(self.start + budgets.total_ms / 1000.0, self.caller_deadline)
        self.margin_s = margin_ms / 1000.0

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
        stage_s = getattr(self._budgets, f"{stage}_ms") / 1000.0
        left = self.remaining_s() - self.margin_s
        if left <= 0:
            raise BudgetExceeded(f"the request's budget was spent before the {stage} stage")
        return min(stage_s, left)

    def answer_timeout(self) -> float:
        """Seconds for the answer stage: its own budget, bounded by the caller's deadline (not the path's)."""
        left = self.caller_deadline - time.perf_counter() - self.margin_s
        if left <= 0:
            raise BudgetExceeded("the caller's deadline passed before the answer stage")
        return min(self._budgets.answer_ms / 1000.0, left)
