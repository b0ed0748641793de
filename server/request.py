"""Per-request state the stages share: id, budget, stage timings and degraded reasons."""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from dataclasses import dataclass, field
from typing import Iterator

from server.budget import Budget
from server.telemetry import StageTimings


#: The request id of the work running in this asyncio context: the pipeline binds it when a request starts
#: (tasks it spawns inherit it), the hallucination worker per job; the Triton client sends it as Triton's
#: request id, so a Triton trace or log line can be joined to the chat that caused it.
_REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("mangaassist_request_id", default="")


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    return _REQUEST_ID.get()


def bind_request_id(request_id: str) -> None:
    """Bind ``request_id`` for the rest of the current task (and the tasks it creates from now on)."""
    _REQUEST_ID.set(request_id)


@contextlib.contextmanager
def request_id_bound(request_id: str) -> Iterator[None]:
    """Bind ``request_id`` for a block (background work on behalf of a request: scoring, warm-up)."""
    token = _REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        _REQUEST_ID.reset(token)


@dataclass
class RequestContext:
    request_id: str
    budget: Budget
    timings: StageTimings
    degraded: list[str] = field(default_factory=list)
    #: Triton model -> the version this request is pinned to (a rollout's pick, server/rollout); the response's
    #: ``model_versions``
    model_versions: dict[str, str] = field(default_factory=dict)

    def degrade(self, reason: str) -> None:
        """Record that the answer is worse than it could be, and why (once per reason)."""
        if reason not in self.degraded:
            self.degraded.append(reason)
