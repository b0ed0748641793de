"""The one server interceptor: bearer-token auth, malformed-request rejection and error mapping.

- :class:`~server.errors.MangaAssistError` -> its status code (``STATUS_OF``, the one map from domain errors
  to gRPC statuses) and message, plus trailing metadata ``mangaassist-reason: <reason>`` (the client SDK
  rebuilds the typed error from the two);
- anything else -> ``INTERNAL`` with the generic details "internal error"; the traceback goes to the log
  under the request's method and request id, never to the caller; an ``InternalBug`` (a broken invariant)
  says only that it is a bug and which request id the log has it under;
- a request that does not parse as its proto message -> ``INVALID_ARGUMENT`` (gRPC's default would be an
  opaque failure) -- the server keeps serving;
- with ``server.auth_tokens`` configured, calls without ``authorization: Bearer <token>`` (compared in
  constant time) -> ``UNAUTHENTICATED``, except methods under ``server.auth_exempt_prefixes`` (health:
  kubelet probes carry no token);
- authorisation: the token names its caller (``<caller>.<secret>``, else ``token<N>``), each RPC needs one
  scope (:data:`SCOPE_OF`: chat, classify, retrieve, admin), and a caller listed in ``server.auth_scopes``
  holds only its scopes -> ``PERMISSION_DENIED`` outside them;
- per-caller rate limit (:class:`RateLimiter`, a token bucket keyed by the token's caller, else the peer's
  address) -> ``RESOURCE_EXHAUSTED``, reason ``rate_limited``, trailing ``retry-after: <seconds>``;
- one access-log line per call on logger ``mangaassist.access``: RPC, caller, peer, status, reason,
  latency and request id -- never the request's or the answer's text;
- the request id (the caller's sanitised ``x-request-id``, else a fresh one) is bound before the servicer
  runs, so the access log, the error log and the pipeline share it.

Health checks (exempt from auth) pass through untouched: no rate limit and no access line (kubelet probes
every few seconds).
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import inspect
import logging
import time
from typing import Any, Awaitable, Callable, Mapping, Sequence

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


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        *,
        tokens: Sequence[str] = (),
        exempt_prefixes: Sequence[str] = (),
        metrics: Metrics | None = None,
        scopes: Mapping[str, Sequence[str]] | None = None,
        customers: Mapping[str, Sequence[str]] | None = None,
        limiter: RateLimiter | None = None,
        log_access: bool = True,
    ) -> None:
        self._tokens = tuple((t.encode(), caller_of_token(t, i)) for i, t in enumerate(tokens) if t)
        self._exempt = tuple(exempt_prefixes)
        self._metrics = metrics
        self._scopes = {caller: frozenset(s) for caller, s in (scopes or {}).items()}
        self._customers = {caller: frozenset(c) for caller, c in (customers or {}).items()}
        self.limiter = limiter
        self._log_access = log_access

    @classmethod
    def from_settings(cls, cfg: Any, metrics: Metrics | None = None) -> "ServiceInterceptor":
        """From ``settings.server``."""
        limiter = (RateLimiter(cfg.rate_limit_per_s, cfg.rate_limit_burst, max_callers=cfg.rate_limit_max_callers)
                   if cfg.rate_limit_per_s > 0 else None)
        return cls(tokens=cfg.auth_tokens, exempt_prefixes=cfg.auth_exempt_prefixes, metrics=metrics,
                   scopes=cfg.auth_scopes, customers=cfg.auth_customers, limiter=limiter, log_access=cfg.access_log)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        needs_auth = bool(self._tokens) and not method.startswith(self._exempt)
        ours = method.startswith(SERVICE_PREFIX)
        if not (needs_auth or ours):
            return handler
        caller = self._caller(details.invocation_metadata) if needs_auth else None
        gate = _Gate(
            method=method,
            authenticated=not needs_auth or caller is not None,
            permitted=not needs_auth or caller is None or self._permitted(caller, method),
            caller=caller,
            customers=self._customers.get(caller) if needs_auth and caller is not None else None,
            limiter=self.limiter if ours else None,
            request_id=request_id_of(details.invocation_metadata),
            log_access=self._log_access,
        )
        return _wrap(handler, gate, ours, self._metrics)

    def _caller(self, metadata: Sequence[tuple[str, Any]] | None) -> str | None:
        """The caller the bearer token names, or None (no token, or not one of ours)."""
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                offered = value[len("Bearer ") :].strip().encode()
                # check every token (no early exit) so timing does not reveal which prefix matched
                matches = [hmac.compare_digest(offered, token) for token, _ in self._tokens]
                return next((caller for (_, caller), hit in zip(self._tokens, matches) if hit), None)
        return None

    def _permitted(self, caller: str, method: str) -> bool:
        held = self._scopes.get(caller)
        if held is None:  # not listed: every scope
            return True
        scope = SCOPE_OF.get(method.rsplit("/", 1)[-1], ADMIN_SCOPE) if method.startswith(SERVICE_PREFIX) else ADMIN_SCOPE
        return scope in held


def caller_of_token(token: str, index: int) -> str:
    """``storefront.s3cr3t`` -> ``storefront``; a token without a dot -> ``token<index+1>`` (never its text)."""
    name, dot, secret = token.partition(".")
    return name if dot and name and secret else f"token{index + 1}"


class _Gate:
    """What the interceptor decided before the call ran, checked when the request arrives."""

    __slots__ = ("method", "authenticated", "permitted", "caller", "customers", "limiter", "request_id", "log_access")

    def __init__(self, *, method: str, authenticated: bool, permitted: bool, caller: str | None,
                 customers: frozenset[str] | None = None, limiter: RateLimiter | None, request_id: str,
                 log_access: bool) -> None:
        self.method, self.authenticated, self.permitted, self.caller = method, authenticated, permitted, caller
        self.customers = customers  # the end customers this caller may act for (None: any; "*" in it: any)
        self.limiter, self.request_id, self.log_access = limiter, request_id, log_access


def _wrap(handler: grpc.RpcMethodHandler, gate: _Gate, ours: bool, metrics: Metrics | None) -> grpc.RpcMethodHandler:
    method = gate.method
    short = method.rsplit("/", 1)[-1]

    def admit(request: Any, context: grpc.aio.ServicerContext) -> str:
        """Bind the request id; raise for an unauthenticated/unpermitted/over-limit/malformed call. -> caller."""
        bind_request_id(gate.request_id)
        caller = gate.caller or _peer_host(context)
        if not gate.authenticated:
            raise Unauthenticated("missing or invalid bearer token")
        if not gate.permitted:
            raise PermissionDenied(f"caller {caller!r} may not call {short}")
        if gate.limiter is not None:
            retry_after_s = gate.limiter.acquire(caller)
            if retry_after_s is not None:
                raise RateLimited(f"rate limit of {gate.limiter.rate_per_s:g} calls/s for caller {caller!r}; "
                                  f"retry after {retry_after_s:.3f}s", retry_after_s=retry_after_s)
        if isinstance(request, _Malformed):
            raise InvalidRequest("request is not a valid protobuf message for this method")
        customer = getattr(request, "customer_id", "")
        if customer and gate.customers is not None and "*" not in gate.customers and customer not in gate.customers:
            raise PermissionDenied(f"caller {caller!r} may not act for this customer")  # never echo the id
        return caller

    def access(context: grpc.aio.ServicerContext, caller: str | None, code: str, reason: str, start: float) -> None:
        if not gate.log_access:
            return
        latency_ms = (time.perf_counter() - start) * 1000
        caller = caller or gate.caller or _peer_host(context)
        access_log.info(
            "rpc=%s caller=%s peer=%s status=%s reason=%s latency_ms=%.1f request_id=%s",
            short, caller, context.peer(), code, reason, latency_ms, gate.request_id,
            extra={"rpc": short, "caller": caller, "peer": context.peer(), "status": code, "reason": reason,
                   "latency_ms": latency_ms, "request_id": gate.request_id},
        )

    async def fail(context: grpc.aio.ServicerContext, err: BaseException, start: float, caller: str | None) -> None:
        request_id = current_request_id() or gate.request_id
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
        if metrics is not None:
            metrics.requests.labels(short, code.name).inc()
            metrics.errors.labels(code.name, reason).inc()
            metrics.request_seconds.labels(short).observe(time.perf_counter() - start)
        access(context, caller, code.name, reason, start)
        trailing: tuple[tuple[str, str], ...] = ((REASON_KEY, reason),)
        if isinstance(err, RateLimited):
            trailing += ((RETRY_AFTER_KEY, f"{err.retry_after_s:.3f}"),)
        await context.abort(code, details, trailing_metadata=trailing)

    def succeeded(context: grpc.aio.ServicerContext, start: float, caller: str | None) -> None:
        if metrics is not None:
            metrics.requests.labels(short, "OK").inc()
            metrics.request_seconds.labels(short).observe(time.perf_counter() - start)
        access(context, caller, "OK", "-", start)

    def ended(context: grpc.aio.ServicerContext, start: float, caller: str | None, err: BaseException) -> None:
        """Cancelled by the caller (or its deadline), or aborted by the handler itself."""
        code = getattr(context, "code", lambda: None)() if isinstance(err, grpc.aio.AbortError) else None
        access(context, caller, code.name if code is not None else "CANCELLED", "-", start)

    passthrough = (asyncio.CancelledError, grpc.aio.AbortError)

    if handler.unary_unary is not None or handler.stream_unary is not None:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            caller = None
            try:
                caller = admit(request, context)
                response = await inner(request, context)
            except passthrough as err:
                ended(context, start, caller, err)
                raise
            except Exception as err:  # noqa: BLE001 -- the one place every error is mapped
                await fail(context, err, start, caller)
                raise AssertionError("context.abort returned") from err
            succeeded(context, start, caller)
            return response

        factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        behavior: Callable[..., Any] = unary
    else:
        inner = handler.unary_stream or handler.stream_stream
        factory = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        if inspect.isasyncgenfunction(inner):

            async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
                start = time.perf_counter()
                caller = None
                try:
                    caller = admit(request, context)
                    async for item in inner(request, context):
                        yield item
                except passthrough as err:
                    ended(context, start, caller, err)
                    raise
                except Exception as err:  # noqa: BLE001 -- the one place every error is mapped
                    await fail(context, err, start, caller)
                    return
                succeeded(context, start, caller)

            behavior = streaming
        else:  # write()-style streaming handler (e.g. health Watch, reflection): a coroutine

            async def writing(request: Any, context: grpc.aio.ServicerContext) -> Any:
                start = time.perf_counter()
                caller = None
                try:
                    caller = admit(request, context)
                    await inner(request, context)
                except passthrough as err:
                    ended(context, start, caller, err)
                    raise
                except Exception as err:  # noqa: BLE001
                    await fail(context, err, start, caller)
                    return
                succeeded(context, start, caller)

            behavior = writing

    deserializer = handler.request_deserializer
    if deserializer is not None and (handler.unary_unary is not None or handler.unary_stream is not None):
        deserializer = _tolerant(deserializer)
    return factory(behavior, request_deserializer=deserializer, response_serializer=handler.response_serializer)


def _tolerant(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as err:  # noqa: BLE001 -- protobuf's DecodeError and friends: the caller's bytes
            return _Malformed(err)

    return parse
