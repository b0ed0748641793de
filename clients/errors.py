"""Typed errors for SDK callers, mirroring ``server/errors.py``.

Built from the status code and the ``mangaassist-reason`` trailing metadata the server sends; a status
without a reason (the client's own deadline, a transport failure, gRPC's message-size limit) maps by code.
"""

from __future__ import annotations

import grpc

REASON_KEY = "mangaassist-reason"
RETRY_AFTER_KEY = "retry-after"


class MangaAssistError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "internal"
    #: the server's ``retry-after`` hint in seconds (rate-limited calls), else None
    retry_after_s: float | None = None

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None, reason: str | None = None,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if reason is not None:
            self.reason = reason
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        return f"{self.code.name} ({self.reason}): {self.message}"


class InvalidRequest(MangaAssistError):
    code, reason = grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument"


class Unauthenticated(MangaAssistError):
    code, reason = grpc.StatusCode.UNAUTHENTICATED, "unauthenticated"


class PermissionDenied(MangaAssistError):
    code, reason = grpc.StatusCode.PERMISSION_DENIED, "permission_denied"


class Overloaded(MangaAssistError):
    """Shed by the service (concurrency cap or a full model queue): retry later, with backoff."""

    code, reason = grpc.StatusCode.RESOURCE_EXHAUSTED, "overloaded"


class RateLimited(Overloaded):
    """This caller is over its rate limit: retry after ``retry_after_s`` seconds."""

    reason = "rate_limited"


class SessionRateLimited(RateLimited):
    """This conversation (``session_id``) sends faster than the service allows one session."""

    reason = "session_rate_limited"


class CustomerRateLimited(RateLimited):
    """This end customer (``customer_id``), across all their sessions, sends faster than the service allows."""

    reason = "customer_rate_limited"


class BudgetExceeded(MangaAssistError):
    code, reason = grpc.StatusCode.DEADLINE_EXCEEDED, "deadline_exceeded"


class Unavailable(MangaAssistError):
    """Draining, unreachable, or a dependency down without a fallback: retry on another replica."""

    code, reason = grpc.StatusCode.UNAVAILABLE, "unavailable"


class BackendError(Unavailable):
    reason = "backend_error"


class BackendOverloaded(BackendError):
    reason = "backend_overloaded"


class BackendTimeout(BackendError):
    reason = "backend_timeout"


class TierUnavailable(Unavailable):
    reason = "tier_unavailable"


class InternalError(MangaAssistError):
    """A server bug; the details stay in the server's log."""

    code, reason = grpc.StatusCode.INTERNAL, "internal"


_BY_REASON: dict[str, type[MangaAssistError]] = {
    cls.reason: cls
    for cls in (
        InvalidRequest, Unauthenticated, PermissionDenied, Overloaded, RateLimited, SessionRateLimited, CustomerRateLimited,
        BudgetExceeded,
        Unavailable,
        BackendError, BackendOverloaded, BackendTimeout, TierUnavailable, InternalError,
    )
}
_BY_CODE: dict[grpc.StatusCode, type[MangaAssistError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: Overloaded,
    grpc.StatusCode.DEADLINE_EXCEEDED: BudgetExceeded,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.INTERNAL: InternalError,
}


def from_rpc_error(err: grpc.RpcError) -> MangaAssistError:
    """The typed error for a failed call (sync ``grpc.RpcError`` or ``grpc.aio.AioRpcError``)."""
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    details = (err.details() if callable(getattr(err, "details", None)) else None) or str(code)
    reason = None
    retry_after_s = None
    trailing = err.trailing_metadata() if callable(getattr(err, "trailing_metadata", None)) else None
    for key, value in trailing or ():
        value = value if isinstance(value, str) else value.decode(errors="replace")
        if key == REASON_KEY:
            reason = value
        elif key == RETRY_AFTER_KEY:
            try:
                retry_after_s = max(0.0, float(value))
            except ValueError:
                pass
    cls = _BY_REASON.get(reason or "")
    if cls is None or cls.code != code:  # the status code decides the class; the reason refines it
        cls = _BY_CODE.get(code, MangaAssistError)
        if cls is MangaAssistError:
            return MangaAssistError(details, code=code, reason=reason or code.name.lower(), retry_after_s=retry_after_s)
    return cls(details, reason=reason, retry_after_s=retry_after_s)
