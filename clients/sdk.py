"""Python SDK for the MangaAssist service: :class:`MangaAssistClient` (sync) and
:class:`AsyncMangaAssistClient` (asyncio). Both return the ``mangaassist.v1`` proto messages and raise
the typed errors of :mod:`clients.errors`.

Every call takes ``timeout`` (seconds; the gRPC deadline the service budgets against, covering every
attempt), defaulting to the client's ``timeout``. ``token`` adds ``authorization: Bearer <token>``;
``request_id`` is sent as ``x-request-id`` and echoed in the response.

Retries (``retries=True``, the default) are gRPC's own (gRFC A6, :data:`RETRY_SERVICE_CONFIG`): only
``UNAVAILABLE`` (a draining replica, a connection that failed) is retried, at most 3 attempts with jittered
exponential backoff from 0.1 s; retry throttling stops retrying while many recent calls fail (a bucket of 10
tokens: each failure takes 1, each success gives 0.1 back, retries only while more than 5 are left), so an
outage is not multiplied into a retry storm.
``RESOURCE_EXHAUSTED`` (shed, rate-limited: ``retry_after_s`` on the error) and ``DEADLINE_EXCEEDED`` are
never retried here; the caller decides.

    with MangaAssistClient("localhost:50051") as client:
        reply = client.chat("Is Chainsaw Man vol 3 in stock?")
        print(reply.answer, [c.title for c in reply.cards])
"""

from __future__ import annotations

import json
from typing import AsyncIterator, Iterator, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mangaassist.v1 import mangaassist_pb2 as pb
from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

from clients.errors import from_rpc_error

DEFAULT_TARGET = "localhost:50051"
DEFAULT_TIMEOUT_S = 10.0
_UNSET = object()

#: gRPC retry policy (gRFC A6) for every MangaAssist RPC: UNAVAILABLE only, with backoff, throttled.
RETRY_SERVICE_CONFIG = {
    "methodConfig": [
        {
            "name": [{"service": "mangaassist.v1.MangaAssist"}],
            "retryPolicy": {
                "maxAttempts": 3,
                "initialBackoff": "0.1s",
                "maxBackoff": "1s",
                "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"],
            },
        }
    ],
    # each failed attempt takes a token, each success returns 0.1; below half of maxTokens nothing is retried
    "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
}


def channel_options(options: Sequence[tuple[str, object]] = (), *, retries: bool = True) -> list[tuple[str, object]]:
    """The SDK's channel arguments: ``options`` plus the retry service config (unless ``options`` sets one)."""
    out = list(options)
    given = {key for key, _ in out}
    if retries and "grpc.service_config" not in given:
        out.append(("grpc.service_config", json.dumps(RETRY_SERVICE_CONFIG)))
    if "grpc.enable_retries" not in given:
        out.append(("grpc.enable_retries", 1 if retries else 0))
    return out


def _metadata(token: str | None, request_id: str | None) -> tuple[tuple[str, str], ...]:
    md = []
    if token:
        md.append(("authorization", f"Bearer {token}"))
    if request_id:
        md.append(("x-request-id", request_id))
    return tuple(md)


def _chat_request(message: str, session_id: str, customer_id: str) -> pb.ChatRequest:
    return pb.ChatRequest(message=message, session_id=session_id, customer_id=customer_id)


def _retrieve_request(query: str, top_k: int, rerank: bool) -> pb.RetrieveRequest:
    return pb.RetrieveRequest(query=query, top_k=top_k, rerank=rerank)


class _Base:
    def __init__(self, token: str | None, timeout: float | None) -> None:
        self.token = token
        self.timeout = timeout

    def _timeout(self, timeout: object) -> float | None:
        return self.timeout if timeout is _UNSET else timeout  # type: ignore[return-value]


class MangaAssistClient(_Base):
    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        token: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, object]] = (),
        retries: bool = True,
    ) -> None:
        super().__init__(token, timeout)
        self.target = target
        self.options = channel_options(options, retries=retries)
        if credentials is not None:
            self._channel = grpc.secure_channel(target, credentials, options=self.options)
        else:
            self._channel = grpc.insecure_channel(target, options=self.options)
        self._stub = pb_grpc.MangaAssistStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def chat(
        self, message: str, *, session_id: str = "", customer_id: str = "", timeout=_UNSET, request_id: str | None = None
    ) -> pb.ChatResponse:
        return self._call(self._stub.Chat, _chat_request(message, session_id, customer_id), timeout, request_id)

    def chat_stream(
        self, message: str, *, session_id: str = "", customer_id: str = "", timeout=_UNSET, request_id: str | None = None
    ) -> Iterator[pb.ChatStreamResponse]:
        """Yields messages with ``delta`` text, then one with ``final`` (the authoritative response)."""
        call = self._stub.ChatStream(
            _chat_request(message, session_id, customer_id),
            timeout=self._timeout(timeout),
            metadata=_metadata(self.token, request_id),
        )
        try:
            yield from call
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    def classify(self, texts: Sequence[str], *, timeout=_UNSET, request_id: str | None = None) -> pb.ClassifyResponse:
        return self._call(self._stub.Classify, pb.ClassifyRequest(texts=list(texts)), timeout, request_id)

    def retrieve(
        self, query: str, *, top_k: int = 0, rerank: bool = True, timeout=_UNSET, request_id: str | None = None
    ) -> pb.RetrieveResponse:
        return self._call(self._stub.Retrieve, _retrieve_request(query, top_k, rerank), timeout, request_id)

    def describe(self, *, timeout=_UNSET) -> pb.DescribeResponse:
        return self._call(self._stub.Describe, pb.DescribeRequest(), timeout, None)

    def health(self, service: str = "", *, timeout=_UNSET) -> str:
        """"SERVING" / "NOT_SERVING" / ... for ``service`` ("", "liveness", "readiness", the service name)."""
        reply = self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service), timeout, None)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "MangaAssistClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method, request, timeout, request_id):
        try:
            return method(request, timeout=self._timeout(timeout), metadata=_metadata(self.token, request_id))
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None


class AsyncMangaAssistClient(_Base):
    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        token: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, object]] = (),
        retries: bool = True,
    ) -> None:
        super().__init__(token, timeout)
        self.target = target
        self.options = channel_options(options, retries=retries)
        if credentials is not None:
            self._channel = grpc.aio.secure_channel(target, credentials, options=self.options)
        else:
            self._channel = grpc.aio.insecure_channel(target, options=self.options)
        self._stub = pb_grpc.MangaAssistStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def chat(
        self, message: str, *, session_id: str = "", customer_id: str = "", timeout=_UNSET, request_id: str | None = None
    ) -> pb.ChatResponse:
        return await self._call(self._stub.Chat, _chat_request(message, session_id, customer_id), timeout, request_id)

    async def chat_stream(
        self, message: str, *, session_id: str = "", customer_id: str = "", timeout=_UNSET, request_id: str | None = None
    ) -> AsyncIterator[pb.ChatStreamResponse]:
        call = self._stub.ChatStream(
            _chat_request(message, session_id, customer_id),
            timeout=self._timeout(timeout),
            metadata=_metadata(self.token, request_id),
        )
        try:
            async for item in call:
                yield item
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    async def classify(self, texts: Sequence[str], *, timeout=_UNSET, request_id: str | None = None) -> pb.ClassifyResponse:
        return await self._call(self._stub.Classify, pb.ClassifyRequest(texts=list(texts)), timeout, request_id)

    async def retrieve(
        self, query: str, *, top_k: int = 0, rerank: bool = True, timeout=_UNSET, request_id: str | None = None
    ) -> pb.RetrieveResponse:
        return await self._call(self._stub.Retrieve, _retrieve_request(query, top_k, rerank), timeout, request_id)

    async def describe(self, *, timeout=_UNSET) -> pb.DescribeResponse:
        return await self._call(self._stub.Describe, pb.DescribeRequest(), timeout, None)

    async def health(self, service: str = "", *, timeout=_UNSET) -> str:
        reply = await self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service), timeout, None)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> "AsyncMangaAssistClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method, request, timeout, request_id):
        try:
            return await method(request, timeout=self._timeout(timeout), metadata=_metadata(self.token, request_id))
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None
