"""The service's gRPC interceptors: single-purpose links that grpc.aio chains (:class:`Interceptors`, outermost
first), each wrapping the next one's handler:

1. :class:`IdentityInterceptor` -- who is calling (the bearer token, compared in constant time, names its
   caller: ``<caller>.<secret>``, else ``token<N>``) and under which request id (the caller's sanitised
   ``x-request-id``, else a fresh one), bound before anything else runs so the access log, the error log and
   the pipeline share it;
2. :class:`OutcomeInterceptor` -- the one place errors are mapped: a :class:`~server.errors.MangaAssistError`
   -> its status (``STATUS_OF``, the one map from domain errors to gRPC statuses) and message, plus trailing
   metadata ``mangaassist-reason: <reason>`` (the client SDK rebuilds the typed error from the two) and
   ``retry-after`` for a rate limit; anything else -> ``INTERNAL`` "internal error", its traceback in the log
   under the request's method and request id, never to the caller (an ``InternalBug`` says only that it is a
   bug and which request id the log has it under). Then the request metrics and one access-log line per call
   on logger ``mangaassist.access``: RPC, caller, peer, status, reason, latency and request id -- never the
   request's or the answer's text;
3. :class:`AuthInterceptor` -- with ``server.auth_tokens`` configured, calls without ``authorization: Bearer
   <token>`` -> ``UNAUTHENTICATED``, except methods under ``server.auth_exempt_prefixes`` (health: kubelet
   probes carry no token); each RPC needs one scope (:data:`SCOPE_OF`: chat, classify, retrieve, admin), and
   a caller listed in ``server.auth_scopes`` holds only its scopes -> ``PERMISSION_DENIED`` outside them;
4. :class:`RateLimitInterceptor` -- per-caller rate limit (:class:`RateLimiter`, a token bucket keyed by the
   token's caller, else the peer's address) -> ``RESOURCE_EXHAUSTED``, reason ``rate_limited``;
5. :class:`RequestInterceptor` -- a request that does not parse as its proto message -> ``INVALID_ARGUMENT``
   (gRPC's default would be an opaque failure; the server keeps serving); a ``customer_id`` the caller may not
   act for (``server.auth_customers``) -> ``PERMISSION_DENIED``.

Links 3-5 only raise; link 2 answers for them. Health checks (exempt from auth) pass through every link
untouched: no rate limit and no access line (kubelet probes every few seconds).
"""
from __future__ import annotations

import asyncio
import collections
import hmac
import inspect
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, NamedTuple, Sequence

import grpc

from server.errors import (
    BudgetExceeded,
    InternalBug,
    InvalidRequest,
    MangaAssistError,
    Overloaded,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from server.metrics import Metrics
from server.request import bind_request_id, current_request_id, new_request_id

log = logging.getLogger(__name__)
access_log = logging.getLogger("mangaassist.access")

REASON_KEY = "mangaassist-reason"
RETRY_AFTER_KEY = "retry-after"
REQUEST_ID_KEY = "x-request-id"
SERVICE_PREFIX = "/mangaassist.v1.MangaAssist/"
#: The scope each RPC needs; methods of other services (server reflection) need ``admin``.
SCOPE_OF: Mapping[str, str] = {
    "Chat": "chat", "ChatStream": "chat", "Classify": "classify", "Retrieve": "retrieve", "Describe": "admin",
    "Feedback": "chat",
}
ADMIN_SCOPE = "admin"

#: Domain error -> the status the caller sees; an error takes the entry of its nearest class
#: (``BackendTimeout`` is an ``Unavailable``). Anything else -- unknown exceptions too -- is INTERNAL.
STATUS_OF: dict[type[MangaAssistError], grpc.StatusCode] = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    BudgetExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    InternalBug: grpc.StatusCode.INTERNAL,
}


def status_of(error: type[BaseException] | BaseException) -> grpc.StatusCode:
    """The gRPC status for a domain error (class or instance)."""
    cls = error if isinstance(error, type) else type(error)
    return next((STATUS_OF[c] for c in cls.__mro__ if c in STATUS_OF), grpc.StatusCode.INTERNAL)


class RateLimiter:
    """Token buckets keyed by caller: ``rate_per_s`` tokens/s up to ``burst``; one call takes one token.

    The event loop is single-threaded, so no lock. At most ``max_callers`` buckets are kept (least recently
    seen dropped first: a dropped caller comes back with a full bucket), so a flood of peers cannot grow it."""

    def __init__(self, rate_per_s: float, burst: int, *, max_callers: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.max_callers = max_callers
        self._clock = clock
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()  # tokens, at
        self.admitted = 0
        self.refused = 0

    def acquire(self, caller: str) -> float | None:
        """None when admitted, else the seconds until one token is back (the ``retry-after`` hint)."""
        now = self._clock()
        tokens, at = self._buckets.pop(caller, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate_per_s)
        admitted = tokens >= 1.0
        if admitted:
            tokens -= 1.0
        self._buckets[caller] = (tokens, now)
        while len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)
        if admitted:
            self.admitted += 1
            return None
        self.refused += 1
        return (1.0 - tokens) / self.rate_per_s

    def __len__(self) -> int:
        return len(self._buckets)


def request_id_of(metadata: Sequence[tuple[str, Any]] | None) -> str:
    """The caller's ``x-request-id`` (at most 64 of ``[A-Za-z0-9-_.]``), or a fresh one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str):
            value = "".join(ch for ch in value[:64] if ch.isascii() and (ch.isalnum() or ch in "-_."))
            if value:
                return value
    return new_request_id()


def _peer_host(context: grpc.aio.ServicerContext) -> str:
    """``ipv4:127.0.0.1:5123`` -> ``ipv4:127.0.0.1`` (the port changes with every connection)."""
    peer = context.peer() or "unknown"
    return peer.rsplit(":", 1)[0] if peer.startswith(("ipv4:", "ipv6:")) else peer


class _Malformed:
    """Stands in for a request whose bytes did not parse, so the wrapper can answer INVALID_ARGUMENT."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class Call(NamedTuple):
    """What :class:`IdentityInterceptor` resolved from the call's metadata, handed down the chain in place of
    grpc's ``HandlerCallDetails`` (generic handlers read ``method`` and ``invocation_metadata`` as before)."""

    method: str
    invocation_metadata: Sequence[tuple[str, Any]] | None
    request_id: str
    caller: str | None  # the bearer token's caller; None when auth is off for the method or no token matched
    authenticated: bool  # auth is off for the method, or a configured token was offered
    covered: bool  # False: left untouched by every interceptor (health; anything not ours when auth is off)

    @property
    def ours(self) -> bool:
        return self.method.startswith(SERVICE_PREFIX)

    @property
    def rpc(self) -> str:
        return self.method.rsplit("/", 1)[-1]

    def who(self, context: grpc.aio.ServicerContext) -> str:
        """The caller the limiter and the access log key on: the token's caller, else the peer's host."""
        return self.caller or _peer_host(context)


class _Interceptor(grpc.aio.ServerInterceptor):
    """A link of the chain: wraps the handler of a covered call with :meth:`wrap`, passes the rest untouched."""

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None or not isinstance(details, Call) or not details.covered:
            return handler
        return self.wrap(handler, details)

    def wrap(self, handler: grpc.RpcMethodHandler, call: Call) -> grpc.RpcMethodHandler:
        raise NotImplementedError


class IdentityInterceptor(grpc.aio.ServerInterceptor):
    """Who is calling, under which request id: the bearer token (compared in constant time) names the caller;
    the request id (the caller's sanitised ``x-request-id``, else a fresh one) is bound before anything else
    runs, so the access log, the error log and the pipeline share it. Refuses nothing (:class:`AuthInterceptor`
    does); decides which calls the chain covers: the service's own, and with auth on every non-exempt one."""

    def __init__(self, *, tokens: Sequence[str] = (), exempt_prefixes: Sequence[str] = ()) -> None:
        self._tokens = tuple((t.encode(), caller_of_token(t, i)) for i, t in enumerate(tokens) if t)
        self._exempt = tuple(exempt_prefixes)

    async def intercept_service(
        self,
        continuation: Callable[[Any], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method, metadata = details.method, details.invocation_metadata
        needs_auth = bool(self._tokens) and not method.startswith(self._exempt)
        caller = self._caller(metadata) if needs_auth else None
        call = Call(method, metadata, request_id_of(metadata), caller, authenticated=not needs_auth or caller is not None,
                    covered=needs_auth or method.startswith(SERVICE_PREFIX))
        handler = await continuation(call)
        if handler is None or not call.covered:
            return handler
        return _before(handler, lambda request, context: bind_request_id(call.request_id))

    def _caller(self, metadata: Sequence[tuple[str, Any]] | None) -> str | None:
        """The caller the bearer token names, or None (no token, or not one of ours)."""
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                offered = value[len("Bearer ") :].strip().encode()
                # check every token (no early exit) so timing does not reveal which prefix matched
                matches = [hmac.compare_digest(offered, token) for token, _ in self._tokens]
                return next((caller for (_, caller), hit in zip(self._tokens, matches) if hit), None)
        return None


class OutcomeInterceptor(_Interceptor):
    """Every covered call's outcome, in one place: a raised error becomes its status (:func:`status_of`),
    details and trailing metadata (``mangaassist-reason``, ``retry-after``), an unexpected one ``INTERNAL``
    with its traceback in the log only; then the request metrics and one access-log line (RPC, caller, peer,
    status, reason, latency, request id -- never the request's or the answer's text). Calls cancelled by the
    caller or aborted by the handler itself pass through, logged."""

    def __init__(self, *, metrics: Metrics | None = None, log_access: bool = True) -> None:
        self._metrics = metrics
        self._log_access = log_access

    def wrap(self, handler: grpc.RpcMethodHandler, call: Call) -> grpc.RpcMethodHandler:
        return _around(handler, lambda context: _Outcome(self, call, context))

    def access(self, call: Call, context: grpc.aio.ServicerContext, code: str, reason: str, start: float) -> None:
        if not self._log_access:
            return
        latency_ms = (time.perf_counter() - start) * 1000
        caller, rpc = call.who(context), call.rpc
        access_log.info(
            "rpc=%s caller=%s peer=%s status=%s reason=%s latency_ms=%.1f request_id=%s",
            rpc, caller, context.peer(), code, reason, latency_ms, call.request_id,
            extra={"rpc": rpc, "caller": caller, "peer": context.peer(), "status": code, "reason": reason,
                   "latency_ms": latency_ms, "request_id": call.request_id},
        )

    def count(self, call: Call, code: str, reason: str | None, start: float) -> None:
        if self._metrics is not None:
            self._metrics.requests.labels(call.rpc, code).inc()
            if reason is not None:
                self._metrics.errors.labels(code, reason).inc()
            self._metrics.request_seconds.labels(call.rpc).observe(time.perf_counter() - start)


class _Outcome:
    """One call seen by :class:`OutcomeInterceptor`: started when created, ended by one of the three below."""

    __slots__ = ("owner", "call", "context", "start")

    def __init__(self, owner: OutcomeInterceptor, call: Call, context: grpc.aio.ServicerContext) -> None:
        self.owner, self.call, self.context, self.start = owner, call, context, time.perf_counter()

    def succeeded(self) -> None:
        self.owner.count(self.call, "OK", None, self.start)
        self.owner.access(self.call, self.context, "OK", "-", self.start)

    def ended(self, err: BaseException) -> None:
        """Cancelled by the caller (or its deadline), or aborted by the handler itself."""
        code = getattr(self.context, "code", lambda: None)() if isinstance(err, grpc.aio.AbortError) else None
        self.owner.access(self.call, self.context, code.name if code is not None else "CANCELLED", "-", self.start)

    async def failed(self, err: BaseException) -> None:
        """Answer the caller with the error's status (``context.abort`` raises AbortError)."""
        method, request_id = self.call.method, current_request_id() or self.call.request_id
        code = status_of(err)
        if isinstance(err, MangaAssistError) and code != grpc.StatusCode.INTERNAL:
            details, reason = err.message, err.reason
        elif isinstance(err, MangaAssistError):  # a broken invariant: its text is for us, not the caller
            log.error("internal error in %s (request %s): %s", method, request_id, err.message, exc_info=err)
            reason = err.reason
            details = f"internal error -- this is a bug; the service log has it under request {request_id}"
        else:
            log.error("unhandled error in %s (request %s)", method, request_id, exc_info=err)
            details, reason = "internal error", "internal"
        self.owner.count(self.call, code.name, reason, self.start)
        self.owner.access(self.call, self.context, code.name, reason, self.start)
        trailing: tuple[tuple[str, str], ...] = ((REASON_KEY, reason),)
        if isinstance(err, RateLimited):
            trailing += ((RETRY_AFTER_KEY, f"{err.retry_after_s:.3f}"),)
        await self.context.abort(code, details, trailing_metadata=trailing)


class AuthInterceptor(_Interceptor):
    """Authentication and RPC scopes: with ``server.auth_tokens`` set, a covered call without a valid bearer
    token -> ``UNAUTHENTICATED``; a caller listed in ``server.auth_scopes`` calling outside its scopes (each RPC
    needs one, :data:`SCOPE_OF`) -> ``PERMISSION_DENIED``."""

    def __init__(self, *, scopes: Mapping[str, Sequence[str]] | None = None) -> None:
        self._scopes = {caller: frozenset(s) for caller, s in (scopes or {}).items()}

    def wrap(self, handler: grpc.RpcMethodHandler, call: Call) -> grpc.RpcMethodHandler:
        def check(request: Any, context: grpc.aio.ServicerContext) -> None:
            if not call.authenticated:
                raise Unauthenticated("missing or invalid bearer token")
            if call.caller is not None and not self._permitted(call.caller, call):
                raise PermissionDenied(f"caller {call.caller!r} may not call {call.rpc}")

        return _before(handler, check)

    def _permitted(self, caller: str, call: Call) -> bool:
        held = self._scopes.get(caller)
        if held is None:  # not listed: every scope
            return True
        return (SCOPE_OF.get(call.rpc, ADMIN_SCOPE) if call.ours else ADMIN_SCOPE) in held


class RateLimitInterceptor(_Interceptor):
    """Per-caller rate limit on the service's own RPCs (:class:`RateLimiter`, keyed by the token's caller, else
    the peer's host) -> ``RESOURCE_EXHAUSTED``, reason ``rate_limited``, trailing ``retry-after``. ``limiter``
    None: off (the link passes every call)."""

    def __init__(self, limiter: RateLimiter | None = None) -> None:
        self.limiter = limiter

    def wrap(self, handler: grpc.RpcMethodHandler, call: Call) -> grpc.RpcMethodHandler:
        limiter = self.limiter
        if limiter is None or not call.ours:
            return handler

        def check(request: Any, context: grpc.aio.ServicerContext) -> None:
            caller = call.who(context)
            retry_after_s = limiter.acquire(caller)
            if retry_after_s is not None:
                raise RateLimited(f"rate limit of {limiter.rate_per_s:g} calls/s for caller {caller!r}; "
                                  f"retry after {retry_after_s:.3f}s", retry_after_s=retry_after_s)

        return _before(handler, check)


class RequestInterceptor(_Interceptor):
    """The request itself: bytes that do not parse as the method's message -> ``INVALID_ARGUMENT`` (gRPC's default
    would be an opaque failure; the server keeps serving); a ``customer_id`` the caller may not act for (listed
    in ``server.auth_customers``; ``"*"`` = any) -> ``PERMISSION_DENIED``, never echoing the id."""

    def __init__(self, *, customers: Mapping[str, Sequence[str]] | None = None) -> None:
        self._customers = {caller: frozenset(c) for caller, c in (customers or {}).items()}

    def wrap(self, handler: grpc.RpcMethodHandler, call: Call) -> grpc.RpcMethodHandler:
        allowed = self._customers.get(call.caller) if call.caller is not None else None  # None: any customer

        def check(request: Any, context: grpc.aio.ServicerContext) -> None:
            if isinstance(request, _Malformed):
                raise InvalidRequest("request is not a valid protobuf message for this method")
            customer = getattr(request, "customer_id", "")
            if customer and allowed is not None and "*" not in allowed and customer not in allowed:
                raise PermissionDenied(f"caller {call.who(context)!r} may not act for this customer")

        deserializer = handler.request_deserializer
        if deserializer is not None and (handler.unary_unary is not None or handler.unary_stream is not None):
            deserializer = _tolerant(deserializer)  # unparsable bytes reach ``check`` as a _Malformed
        return _before(handler, check, deserializer=deserializer)


@dataclass(frozen=True)
class Interceptors:
    """The service's chain, outermost first (grpc.aio runs them in this order, each wrapping the next):
    identity -> outcome (error map, metrics, access log) -> auth -> rate limit -> request checks -> servicer.
    A refusal raised by a later link is mapped, counted and logged by the outcome link like any error."""

    chain: tuple[grpc.aio.ServerInterceptor, ...]
    limiter: RateLimiter | None  # counts admitted/refused calls (None: rate limiting off)

    @classmethod
    def from_settings(cls, cfg: Any, metrics: Metrics | None = None) -> "Interceptors":
        """From ``settings.server``."""
        limiter = (RateLimiter(cfg.rate_limit_per_s, cfg.rate_limit_burst, max_callers=cfg.rate_limit_max_callers)
                   if cfg.rate_limit_per_s > 0 else None)
        return cls(
            chain=(
                IdentityInterceptor(tokens=cfg.auth_tokens, exempt_prefixes=cfg.auth_exempt_prefixes),
                OutcomeInterceptor(metrics=metrics, log_access=cfg.access_log),
                AuthInterceptor(scopes=cfg.auth_scopes),
                RateLimitInterceptor(limiter),
                RequestInterceptor(customers=cfg.auth_customers),
            ),
            limiter=limiter,
        )


def caller_of_token(token: str, index: int) -> str:
    """``storefront.s3cr3t`` -> ``storefront``; a token without a dot -> ``token<index+1>`` (never its text)."""
    name, dot, secret = token.partition(".")
    return name if dot and name and secret else f"token{index + 1}"


# ------------------------------------------------------------------------------------------- handler shapes
_PASSTHROUGH = (asyncio.CancelledError, grpc.aio.AbortError)


def _parts(handler: grpc.RpcMethodHandler) -> tuple[Callable[..., Any], str, Callable[..., grpc.RpcMethodHandler]]:
    """(the behaviour, its shape, the factory that rebuilds a handler of the same kind). Shapes: ``unary`` (one
    response), ``stream`` (an async generator) or ``write`` (a coroutine calling ``context.write``: health Watch,
    reflection)."""
    if handler.unary_unary is not None:
        return handler.unary_unary, "unary", grpc.unary_unary_rpc_method_handler
    if handler.stream_unary is not None:
        return handler.stream_unary, "unary", grpc.stream_unary_rpc_method_handler
    if handler.unary_stream is not None:
        inner, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    else:
        inner, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    return inner, "stream" if inspect.isasyncgenfunction(inner) else "write", factory


def _rebuilt(handler: grpc.RpcMethodHandler, factory: Callable[..., grpc.RpcMethodHandler],
             behavior: Callable[..., Any], deserializer: Callable[[bytes], Any] | None = None) -> grpc.RpcMethodHandler:
    return factory(behavior, request_deserializer=deserializer or handler.request_deserializer,
                   response_serializer=handler.response_serializer)


def _before(handler: grpc.RpcMethodHandler, check: Callable[[Any, grpc.aio.ServicerContext], None], *,
            deserializer: Callable[[bytes], Any] | None = None) -> grpc.RpcMethodHandler:
    """The handler with ``check(request, context)`` run first, when the call runs (what it raises is the call's);
    ``deserializer`` replaces the handler's."""
    inner, shape, factory = _parts(handler)
    if shape == "stream":

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
            check(request, context)
            async for item in inner(request, context):
                yield item

        return _rebuilt(handler, factory, streaming, deserializer)

    async def once(request: Any, context: grpc.aio.ServicerContext) -> Any:
        check(request, context)
        return await inner(request, context)

    return _rebuilt(handler, factory, once, deserializer)


def _around(handler: grpc.RpcMethodHandler, begin: Callable[[grpc.aio.ServicerContext], _Outcome]) -> grpc.RpcMethodHandler:
    """The handler with each call's outcome reported to ``begin(context)``'s :class:`_Outcome`."""
    inner, shape, factory = _parts(handler)
    if shape == "unary":

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            outcome = begin(context)
            try:
                response = await inner(request, context)
            except _PASSTHROUGH as err:
                outcome.ended(err)
                raise
            except Exception as err:  # noqa: BLE001 -- the one place every error is mapped
                await outcome.failed(err)
                raise AssertionError("context.abort returned") from err
            outcome.succeeded()
            return response

        return _rebuilt(handler, factory, unary)
    if shape == "stream":

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
            outcome = begin(context)
            try:
                async for item in inner(request, context):
                    yield item
            except _PASSTHROUGH as err:
                outcome.ended(err)
                raise
            except Exception as err:  # noqa: BLE001 -- the one place every error is mapped
                await outcome.failed(err)
                return
            outcome.succeeded()

        return _rebuilt(handler, factory, streaming)

    async def writing(request: Any, context: grpc.aio.ServicerContext) -> Any:
        outcome = begin(context)
        try:
            await inner(request, context)
        except _PASSTHROUGH as err:
            outcome.ended(err)
            raise
        except Exception as err:  # noqa: BLE001 -- the one place every error is mapped
            await outcome.failed(err)
            return
        outcome.succeeded()

    return _rebuilt(handler, factory, writing)


def _tolerant(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as err:  # noqa: BLE001 -- protobuf's DecodeError and friends: the caller's bytes
            return _Malformed(err)

    return parse
