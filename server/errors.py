"""One error hierarchy for the whole service.

Every error the service raises on purpose derives from :class:`MangaAssistError` and carries a stable
``reason``; these are domain errors and know nothing of gRPC. The server's outcome interceptor
(``server/interceptors.py``: ``OutcomeInterceptor`` with ``STATUS_OF``) is the only place that maps them to
gRPC status codes, those raised by the auth, rate-limit and request-check interceptors included; anything
else that escapes becomes ``INTERNAL`` with a generic message (the details go to the log). The client SDK
mirrors this hierarchy (``clients/errors.py``).
"""

from __future__ import annotations


class MangaAssistError(Exception):
    """Root of all deliberate errors.

    Its status for the caller is the outcome interceptor's business (a subclass with no status of its own is INTERNAL)."""

    #: Stable machine-readable reason, sent as trailing metadata ``mangaassist-reason``.
    reason: str = "internal"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class InvalidRequest(MangaAssistError):
    """The caller sent something we will never accept (empty text, bad UTF-8, too long)."""

    reason = "invalid_argument"


class Unauthenticated(MangaAssistError):
    reason = "unauthenticated"


class PermissionDenied(MangaAssistError):
    reason = "permission_denied"


class Overloaded(MangaAssistError):
    """Admission control shed this request (concurrency cap or a backend queue is full)."""

    reason = "overloaded"


class RateLimited(Overloaded):
    """The caller spent its token bucket (server/interceptors.py ``RateLimiter``); ``retry_after_s`` is when the
    next call would be admitted (sent as trailing metadata ``retry-after``)."""

    reason = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BudgetExceeded(MangaAssistError):
    """The caller's deadline / the configured budget was spent before an answer existed."""

    reason = "deadline_exceeded"


class Unavailable(MangaAssistError):
    """Draining, or a dependency is down and no safe fallback exists."""

    reason = "unavailable"


class BackendError(Unavailable):
    """A model backend (Triton) call failed. Stages catch this to degrade where that is safe."""

    reason = "backend_error"

    def __init__(self, message: str, *, model: str, reason: str | None = None) -> None:
        super().__init__(message, reason=reason)
        self.model = model


class BackendOverloaded(BackendError):
    """Triton rejected the request from its queue (queue full / queue timeout). Never retry blindly."""

    reason = "backend_overloaded"


class BackendTimeout(BackendError):
    """A backend call ran past the deadline we gave it."""

    reason = "backend_timeout"


class TierUnavailable(Unavailable):
    """An LLM tier could not answer (throttled, timed out, down). The router falls back to a lower tier."""

    reason = "tier_unavailable"

    def __init__(self, message: str, *, tier: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.tier = tier
        self.retryable = retryable


class InternalBug(MangaAssistError):
    """An invariant we rely on was broken (e.g. a batch returned the wrong number of outputs)."""

    reason = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(f"{message} -- this is a bug")


class SessionUnavailable(Unavailable):
    """The session store (server/sessions) did not answer in time or at all. The pipeline answers that turn
    without memory (``degraded: session_unavailable``); it never reaches a caller."""

    reason = "session_unavailable"


class SessionRateLimited(RateLimited):
    """One session sent messages faster than ``sessions.rate_per_s`` (its bucket lives in the session store)."""

    reason = "session_rate_limited"


class CustomerRateLimited(RateLimited):
    """One customer (across all their sessions) sent messages faster than ``sessions.customer_rate_per_s``."""

    reason = "customer_rate_limited"


class RolloutRefused(InvalidRequest):
    """A rollout change (server/rollout) that names a version Triton does not serve, a canary share outside
    0-100, a version without a passing gate record, or a malformed file; the running rollout stays as it was."""

    reason = "rollout_refused"

