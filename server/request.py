"""Per-request state the stages share: id, budget, stage timings and degraded reasons."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from server.budget import Budget
from server.telemetry import StageTimings


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass
class RequestContext:
    request_id: str
    budget: Budget
    timings: StageTimings
    degraded: list[str] = field(default_factory=list)

    def degrade(self, reason: str) -> None:
        """Record that the answer is worse than it could be, and why (once per reason)."""
        if reason not in self.degraded:
            self.degraded.append(reason)
