"""Amazon Bedrock LLM tier (Converse / ConverseStream through boto3's ``bedrock-runtime`` client).

Budget handling, because botocore will not do it for us:

* every call gets ``read_timeout`` from the caller's remaining budget (``LLMRequest.timeout_s``); botocore
  fixes timeouts per client, so clients are cached per *timeout bucket* (floored to 0.25 s, so a client
  never waits longer than the budget it was picked for);
* retries are botocore ``standard`` mode with ``total_max_attempts=2``: one retry for 429/500/503 and
  connection errors. ``ModelTimeoutException`` (408) is not retried by botocore: we fall back at once.
  A read timeout *is* retried by botocore, but it has already used the whole budget, so a
  ``needs-retry`` hook vetoes that, and any retry when less than ``min_retry_budget_s`` is left;
* the blocking boto3 calls run in a worker thread (``asyncio.to_thread``); the coroutine also waits with
  ``asyncio.wait_for`` on the budget, so the caller never waits past it even if a socket misbehaves.

Errors surface as :class:`server.errors.TierUnavailable` (the router falls back to a smaller tier or a
template); ``retryable`` says whether the tier itself may succeed on a later request soon (throttling,
5xx, connection trouble) or not (model timeout, budget spent, validation/permission problems).
The model answers in :mod:`server.llm.answer_format` NDJSON; ``generate`` returns the parsed text and the
product ASINs, and flags ``answer_format_invalid`` (the schema guardrail then falls back) when it cannot.
``stream`` yields the raw NDJSON deltas: feed them to :class:`server.llm.answer_format.StreamParser`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, AsyncIterator

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from server.errors import TierUnavailable
from server.llm import answer_format
from server.llm.base import LLMAnswer, LLMRequest
from server.llm.prompts import Prompt, build_prompt_for

log = logging.getLogger(__name__)

#: Service error codes after which the tier may well answer the next request (transient).
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException", "ServiceUnavailableException", "InternalServerException",
        "ModelNotReadyException", "ModelStreamErrorException", "TooManyRequestsException",
    }
)
#: Codes that mean our request or our configuration is wrong (never fixed by waiting): log loudly.
_BUG_CODES = frozenset({"ValidationException", "AccessDeniedException", "ResourceNotFoundException"})

_THREAD = threading.local()  # the deadline of the call running in this worker thread


class _RetryVetoed(Exception):
    """Raised from the needs-retry hook: a retry could not finish inside the caller's budget."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class StreamUsage:
    """Filled in by :meth:`BedrockTier.stream` when the stream ends (pass one in to read it)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    stop_reason: str = ""


def _timeout_bucket(timeout_s: float) -> float:
    if timeout_s >= 0.25:
        return math.floor(timeout_s * 4) / 4
    return max(0.05, math.floor(timeout_s * 20) / 20)


class BedrockTier:
    """An :class:`server.llm.base.LLMTier` backed by one Bedrock model."""

    def __init__(
        self,
        name: str,
        model_id: str,
        region: str,
        prices_per_1k: dict[str, float],
        endpoint_url: str | None = None,
        client: Any | None = None,
        max_attempts: int = 2,
        *,
        session: boto3.session.Session | None = None,
        catalog: Any | None = None,
        connect_timeout_s: float = 1.0,
        min_retry_budget_s: float = 0.5,
        max_cached_clients: int = 16,
    ) -> None:
        self.name = name
        self.model_id = model_id
        self.region = region
        self.prices_per_1k = {"input": float(prices_per_1k.get("input", 0.0)),
                              "output": float(prices_per_1k.get("output", 0.0))}
        self.endpoint_url = endpoint_url
        self.max_attempts = max_attempts
        self.connect_timeout_s = connect_timeout_s
        self.min_retry_budget_s = min_retry_budget_s
        self._fixed_client = client
        self._session = session or boto3.session.Session(region_name=region)
        self._clients: OrderedDict[float, Any] = OrderedDict()
        self._max_clients = max_cached_clients
        self._lock = threading.Lock()  # boto3 sessions are not thread-safe; clients are
        price_of = getattr(catalog, "price_of", None) if catalog is not None else None
        self._price_of = price_of

    # --- clients ---------------------------------------------------------------------------------
    def _client_for(self, timeout_s: float) -> Any:
        if self._fixed_client is not None:
            return self._fixed_client
        bucket = _timeout_bucket(timeout_s)
        with self._lock:
            client = self._clients.get(bucket)
            if client is not None:
                self._clients.move_to_end(bucket)
                return client
            config = Config(
                region_name=self.region,
                retries={"mode": "standard", "total_max_attempts": self.max_attempts},
                read_timeout=bucket,
                connect_timeout=min(self.connect_timeout_s, bucket),
                tcp_keepalive=True,
            )
            client = self._session.client("bedrock-runtime", endpoint_url=self.endpoint_url, config=config)
            # Runs before the standard retry handler (first registered wins nothing, but may raise).
            client.meta.events.register_first("needs-retry.bedrock-runtime", self._veto_retry)
            self._clients[bucket] = client
            while len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)
            return client

    def _veto_retry(self, attempts: int = 1, response: Any = None, caught_exception: Any = None, **_: Any) -> None:
        """needs-retry hook: stop botocore from retrying what cannot finish inside the budget."""
        if isinstance(caught_exception, ReadTimeoutError):
            raise caught_exception  # the attempt already used the whole read budget
        deadline = getattr(_THREAD, "deadline", None)
        if deadline is None or deadline - time.monotonic() >= self.min_retry_budget_s:
            return None  # no opinion: botocore's standard policy decides
        if caught_exception is not None:
            raise caught_exception
        code = ""
        if response is not None:
            code = (response[1] or {}).get("Error", {}).get("Code", "")
            if not code or response[0].status_code < 400:
                return None
        raise _RetryVetoed(code or "unknown")

    # --- calls -----------------------------------------------------------------------------------
    def _prompt(self, request: LLMRequest) -> Prompt:
        return build_prompt_for(request, price_of=self._price_of)

    def _kwargs(self, request: LLMRequest) -> dict[str, Any]:
        return {
            "modelId": self.model_id,
            **self._prompt(request).to_converse(),
            "inferenceConfig": {"maxTokens": int(request.max_tokens), "temperature": float(request.temperature)},
        }

    def _cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens / 1000.0) * self.prices_per_1k["input"] + (
            output_tokens / 1000.0
        ) * self.prices_per_1k["output"]

    def _blocking(self, op: str, kwargs: dict[str, Any], timeout_s: float, deadline: float) -> Any:
        _THREAD.deadline = deadline
        try:
            client = self._client_for(timeout_s)
            return getattr(client, op)(**kwargs)
        finally:
            _THREAD.deadline = None

    def _unavailable(self, exc: BaseException) -> TierUnavailable:
        """Map a boto/botocore failure to TierUnavailable (logging config/bug-like ones as errors)."""
        tier = self.name
        if isinstance(exc, _RetryVetoed):
            return TierUnavailable(f"bedrock {exc.code}; no budget left to retry", tier=tier, retryable=True)
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "ModelTimeoutException":
                return TierUnavailable("bedrock model timed out (408)", tier=tier, retryable=False)
            if code in _BUG_CODES:
                log.error("bedrock %s rejected our request for %s (%s) -- this is a bug or a misconfiguration",
                          code, self.model_id, exc.response.get("Error", {}).get("Message", ""))
                return TierUnavailable(f"bedrock rejected the request ({code})", tier=tier, retryable=False)
            transient = code in _TRANSIENT_CODES or (isinstance(status, int) and status >= 500)
            return TierUnavailable(f"bedrock {code} ({status})", tier=tier, retryable=transient)
        if isinstance(exc, ReadTimeoutError):
            return TierUnavailable("bedrock read timed out within the budget", tier=tier, retryable=False)
        if isinstance(exc, (ConnectTimeoutError, EndpointConnectionError, ConnectionClosedError)):
            return TierUnavailable(f"bedrock unreachable ({type(exc).__name__})", tier=tier, retryable=True)
        if isinstance(exc, BotoCoreError):
            return TierUnavailable(f"bedrock client error ({type(exc).__name__})", tier=tier, retryable=True)
        log.exception("unexpected error calling bedrock %s", self.model_id, exc_info=exc)
        return TierUnavailable("bedrock call failed", tier=tier, retryable=False)

    def _budget_spent(self) -> TierUnavailable:
        return TierUnavailable("bedrock call ran out of budget", tier=self.name, retryable=False)

    async def generate(self, request: LLMRequest) -> LLMAnswer:
        if request.timeout_s <= 0:
            raise self._budget_spent()
        deadline = time.monotonic() + request.timeout_s
        kwargs = self._kwargs(request)
        try:
            resp = await asyncio.wait_for(
                asyncio.to_thread(self._blocking, "converse", kwargs, request.timeout_s, deadline),
                timeout=request.timeout_s,
            )
        except asyncio.TimeoutError:
            raise self._budget_spent() from None
        except (ClientError, BotoCoreError, _RetryVetoed) as exc:
            raise self._unavailable(exc) from exc
        return self._answer(resp)

    def _answer(self, resp: dict[str, Any]) -> LLMAnswer:
        blocks = resp.get("output", {}).get("message", {}).get("content", [])
        raw = "".join(b.get("text", "") for b in blocks)
        usage = resp.get("usage", {})
        in_tok, out_tok = int(usage.get("inputTokens", 0)), int(usage.get("outputTokens", 0))
        return self._build_answer(raw, in_tok, out_tok, resp.get("stopReason", ""))

    def _build_answer(self, raw: str, in_tok: int, out_tok: int, stop_reason: str) -> LLMAnswer:
        parsed = answer_format.parse(raw)
        degraded: list[str] = []
        if answer_format.fatal_schema_errors(parsed):
            degraded.append("answer_format_invalid")
            text, asins = raw, ()
        else:
            text, asins = parsed.text, parsed.asins
            if not parsed.complete or stop_reason == "max_tokens":
                degraded.append("answer_truncated")
        return LLMAnswer(
            text=text,
            tier=self.name,
            model=self.model_id,
            product_asins=tuple(asins),
            input_tokens=in_tok,
            output_tokens=out_tok,
            cost_usd=self._cost(in_tok, out_tok),
            degraded=tuple(degraded),
        )

    async def stream(self, request: LLMRequest, usage: StreamUsage | None = None) -> AsyncIterator[str]:
        """Yield the model's raw NDJSON deltas as they arrive; ``usage`` is filled in at the end."""
        if request.timeout_s <= 0:
            raise self._budget_spent()
        deadline = time.monotonic() + request.timeout_s
        kwargs = self._kwargs(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()
        holder: dict[str, Any] = {}

        def put(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone (shutdown): nobody is listening any more
                pass

        def worker() -> None:
            try:
                resp = self._blocking("converse_stream", kwargs, request.timeout_s, deadline)
                events = resp["stream"]
                holder["stream"] = events
                for event in events:
                    if stop.is_set():
                        break
                    if "contentBlockDelta" in event:
                        text = event["contentBlockDelta"].get("delta", {}).get("text")
                        if text:
                            put(("delta", text))
                    elif "messageStop" in event:
                        put(("stop", event["messageStop"].get("stopReason", "")))
                    elif "metadata" in event:
                        put(("usage", event["metadata"].get("usage", {})))
                put(("done", None))
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which maps it
                if not stop.is_set():
                    put(("error", exc))
            finally:
                events = holder.get("stream")
                if events is not None:
                    events.close()

        worker_future = loop.run_in_executor(None, worker)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._budget_spent()
                try:
                    kind, value = await asyncio.wait_for(queue.get(), timeout=remaining)
                except asyncio.TimeoutError:
                    raise self._budget_spent() from None
                if kind == "delta":
                    yield value
                elif kind == "stop" and usage is not None:
                    usage.stop_reason = value
                elif kind == "usage" and usage is not None:
                    usage.input_tokens = int(value.get("inputTokens", 0))
                    usage.output_tokens = int(value.get("outputTokens", 0))
                    usage.cost_usd = self._cost(usage.input_tokens, usage.output_tokens)
                elif kind == "error":
                    if isinstance(value, (ClientError, BotoCoreError, _RetryVetoed)):
                        raise self._unavailable(value) from value
                    raise self._unavailable(value)
                elif kind == "done":
                    return
        finally:
            stop.set()
            events = holder.get("stream")
            if events is not None and not worker_future.done():
                try:
                    events.close()  # unblocks the worker's read where the platform allows it
                except Exception:  # noqa: BLE001 - best effort; the read timeout bounds the worker anyway
                    pass

    async def generate_streaming(self, request: LLMRequest) -> LLMAnswer:
        """Collect :meth:`stream` into an answer (same parsing/accounting as :meth:`generate`)."""
        usage = StreamUsage()
        parts = [delta async for delta in self.stream(request, usage)]
        return self._build_answer("".join(parts), usage.input_tokens, usage.output_tokens, usage.stop_reason)
