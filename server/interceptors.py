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
  kubelet probes carry no token).
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
import time
from typing import Any, Awaitable, Callable, Sequence

import grpc

from server.errors import (
    BudgetExceeded,
    InternalBug,
    InvalidRequest,
    MangaAssistError,
    Overloaded,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from server.metrics import Metrics
from server.request import current_request_id

log = logging.getLogger(__name__)

REASON_KEY = "mangaassist-reason"
SERVICE_PREFIX = "/mangaassist.v1.MangaAssist/"

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
    ) -> None:
        self._tokens = tuple(t.encode() for t in tokens if t)
        self._exempt = tuple(exempt_prefixes)
        self._metrics = metrics

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
        authorized = not needs_auth or self._authorized(details.invocation_metadata)
        return _wrap(handler, method, authorized, ours, self._metrics)

    def _authorized(self, metadata: Sequence[tuple[str, Any]] | None) -> bool:
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                offered = value[len("Bearer ") :].strip().encode()
                # check every token (no early exit) so timing does not reveal which prefix matched
                return any([hmac.compare_digest(offered, token) for token in self._tokens])
        return False


def _wrap(
    handler: grpc.RpcMethodHandler, method: str, authorized: bool, ours: bool, metrics: Metrics | None
) -> grpc.RpcMethodHandler:
    short = method.rsplit("/", 1)[-1]

    def admit(request: Any) -> None:
        if not authorized:
            raise Unauthenticated("missing or invalid bearer token")
        if isinstance(request, _Malformed):
            raise InvalidRequest("request is not a valid protobuf message for this method")

    async def fail(context: grpc.aio.ServicerContext, err: BaseException, start: float) -> None:
        request_id = current_request_id() or "-"
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
        await context.abort(code, details, trailing_metadata=((REASON_KEY, reason),))

    def succeeded(start: float) -> None:
        if metrics is not None:
            metrics.requests.labels(short, "OK").inc()
            metrics.request_seconds.labels(short).observe(time.perf_counter() - start)

    passthrough = (asyncio.CancelledError, grpc.aio.AbortError)

    if handler.unary_unary is not None or handler.stream_unary is not None:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            try:
                admit(request)
                response = await inner(request, context)
            except passthrough:
                raise
            except Exception as err:  # noqa: BLE001 -- the one place every error is mapped
                await fail(context, err, start)
                raise AssertionError("context.abort returned") from err
            succeeded(start)
            return response

        factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        behavior: Callable[..., Any] = unary
    else:
        inner = handler.unary_stream or handler.stream_stream
        factory = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        if inspect.isasyncgenfunction(inner):

            async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
                start = time.perf_counter()
                try:
                    admit(request)
                    async for item in inner(request, context):
                        yield item
                except passthrough:
                    raise
                except Exception as err:  # noqa: BLE001 -- the one place every error is mapped
                    await fail(context, err, start)
                    return
                succeeded(start)

            behavior = streaming
        else:  # write()-style streaming handler (e.g. health Watch): a coroutine

            async def writing(request: Any, context: grpc.aio.ServicerContext) -> Any:
                start = time.perf_counter()
                try:
                    admit(request)
                    await inner(request, context)
                except passthrough:
                    raise
                except Exception as err:  # noqa: BLE001
                    await fail(context, err, start)
                    return
                succeeded(start)

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
