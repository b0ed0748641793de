"""The one Triton client: every model call the service makes goes through :class:`TritonClient`.

Classify, embed, adapter and rerank (:mod:`server.backends.triton`), the hallucination scorer
(:mod:`server.hallucination.scorer`) and the local LLM's decoupled stream (:mod:`server.llm.local`) all call
:meth:`TritonClient.infer` or :meth:`TritonClient.stream`. The client owns, once for all of them:

**The channel** (``tritonclient.grpc.aio`` over one ``grpc.aio`` channel per event loop): HTTP/2 keepalive
pings while calls are in flight (``triton.keepalive_time_ms`` / ``keepalive_timeout_ms``; no pings on an idle
connection, which Triton's default ping policy would answer with GOAWAY), reconnect back-off capped near
the breaker's cooldown, message-size limits (``triton.max_message_bytes``) and client-side load balancing (``triton.load_balancing``, ``round_robin`` by
default). With ``triton.url`` = ``dns:///triton-headless.ns.svc:8001`` (a headless Service) or
``ipv4:10.0.0.1:8001,10.0.0.2:8001``, every resolved address gets a subchannel and calls rotate over the
ready ones; a pod that goes away drops out of the rotation and the rest carry the calls.

**A circuit breaker per model** (closed -> open after ``triton.breaker_failures`` consecutive failures ->
half-open after ``triton.breaker_cooldown_s``: one trial call -> closed or open again). What counts:

- unreachable (connection refused/reset, UNAVAILABLE without a queue marker) and other non-overload errors
  (model missing) count as failures;
- queue full / queue timeout (Triton alive and shedding) never count: the call is reported as overloaded;
- **a timeout is judged, not counted**: a deadline that expires says only "no answer yet". After one, the
  client asks Triton's ``ServerLive`` (``triton.liveness_probe_s``, one probe at a time, off the caller's
  path). If Triton answers, it is alive but slow: the timeout goes back to the caller as
  :class:`~server.errors.BackendTimeout` and does not touch the breaker -- slowness is the stage budgets',
  the rerank decision's and Triton's queue policy's business, and opening the circuit would turn a slow
  classifier into no classifier for every request. If the probe gets no answer either, Triton is dead
  or unreachable (a SIGKILLed pod whose connection never saw a reset, a blackholed node): the timeout
  counts as a failure, and after ``breaker_failures`` of them calls fail in microseconds
  (``reason="circuit_open"``) instead of each waiting out its budget.

**One error mapping** (:func:`map_triton_error`) for unary calls, stream set-up and errors inside a stream:
queue full / queue timeout / RESOURCE_EXHAUSTED -> :class:`~server.errors.BackendOverloaded`;
DEADLINE_EXCEEDED -> :class:`~server.errors.BackendTimeout`; UNAVAILABLE -> ``BackendError`` with reason
``backend_unreachable``; anything else -> ``BackendError``. Callers decide what each means to them (the
pipeline degrades, the LLM tier raises ``TierUnavailable``, the scorer falls back to lexical scoring).

**Deadlines**: every call gets ``client_timeout = timeout_s`` (what the caller's stage budget allows) and,
with ``triton.send_queue_timeout``, the same budget as Triton's per-request queue ``timeout`` (models whose
queue policy sets ``allow_timeout_override``); a queue timeout we set ourselves is our deadline, so it maps
to ``BackendTimeout``, not to overload.

**Request identity**: the request id bound by the pipeline (:func:`server.request.bind_request_id`) goes out as
Triton's request ``id`` on every call -- Triton's trace (``--trace-config``) and verbose log then name the chat
that caused each model execution, composing models of an ensemble included. When telemetry has a current
span, its W3C ``traceparent`` goes out both as gRPC metadata (what Triton's OpenTelemetry trace mode reads)
and as a request parameter.

**Versions**: every call names its ``model_version`` explicitly: ``triton.model_versions[model]``, else
``triton.model_version`` (the repository's ``1`` by default) -- what shadow/canary rollouts will switch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

import grpc
import numpy as np
from opentelemetry import trace

from contracts.models import DEFAULT_MODEL_VERSION, ModelContract
from server.aio import concurrently
from server.errors import BackendError, BackendOverloaded, BackendTimeout, InternalBug
from server.request import current_request_id
from server.settings import TritonSettings

log = logging.getLogger(__name__)

_OVERLOAD_MARKERS = ("exceeds maximum queue size", "request timeout expired", "queue is full", "timeout in queue")
_QUEUE_TIMEOUT_MARKERS = ("request timeout expired", "timeout in queue")
_DEAD_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class CircuitBreaker:
    """closed --N consecutive failures--> open --cooldown--> half-open --trial ok--> closed (else open)."""

    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures_to_open = max(1, failures)
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.cooldown_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._trial_in_flight = False
        self._consecutive += 1
        if self._opened_at is not None or self._consecutive >= self.failures_to_open:
            self._opened_at = self._clock()  # (re)open: a failed trial restarts the cooldown

    def release(self) -> None:
        """The call ended without a verdict (cancelled, overloaded, slow): let another trial through."""
        self._trial_in_flight = False


def map_triton_error(model: str, err: BaseException, *, own_queue_timeout: bool = False) -> BackendError:
    """tritonclient's InferenceServerException (status like "StatusCode.UNAVAILABLE") or a raw
    ``grpc.aio.AioRpcError`` (stream calls) -> the service's hierarchy. ``own_queue_timeout``: we sent a
    per-request queue timeout, so Triton's "Request timeout expired" is our deadline, not shedding."""
    if isinstance(err, grpc.aio.AioRpcError):
        status, message = str(err.code()), err.details() or ""
    else:
        status = str(getattr(err, "status", lambda: "")() or "")
        message = getattr(err, "message", lambda: None)() or str(err)
    lowered = message.lower()
    text = f"{model}: {message}"
    if own_queue_timeout and any(marker in lowered for marker in _QUEUE_TIMEOUT_MARKERS):
        return BackendTimeout(text, model=model)
    if any(marker in lowered for marker in _OVERLOAD_MARKERS) or status.endswith("RESOURCE_EXHAUSTED"):
        return BackendOverloaded(text, model=model)
    if status.endswith("DEADLINE_EXCEEDED") or "deadline exceeded" in lowered:
        return BackendTimeout(text, model=model)
    if status.endswith("UNAVAILABLE"):
        return BackendError(text, model=model, reason="backend_unreachable")
    return BackendError(text, model=model)


def traceparent() -> str | None:
    """The W3C traceparent of the current OpenTelemetry span, or None (no exporter: no valid span)."""
    sc = trace.get_current_span().get_span_context()
    if not sc.is_valid:
        return None
    return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"


def channel_args(settings: TritonSettings) -> list[tuple[str, Any]]:
    """The gRPC channel options of every Triton channel (see the module docstring)."""
    backoff_ms = max(100, min(1000, int(settings.breaker_cooldown_s * 1000)))
    args: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", settings.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", settings.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.max_pings_without_data", 0),
        # reconnect to a restarted Triton about as fast as the breaker lets a trial call through (gRPC's
        # default backoff grows to 120 s, which would keep a recovered Triton unused long after its cooldown)
        ("grpc.initial_reconnect_backoff_ms", backoff_ms),
        ("grpc.min_reconnect_backoff_ms", backoff_ms),
        ("grpc.max_reconnect_backoff_ms", max(backoff_ms, 1000)),
    ]
    if settings.load_balancing:
        args.append(("grpc.lb_policy_name", settings.load_balancing))
    return args


class TritonClient:
    """See the module docstring. ``transport``: a ``tritonclient.grpc.aio.InferenceServerClient``-like
    object to use instead of creating one (tests); it is then borrowed and never closed here."""

    def __init__(
        self, settings: TritonSettings, *, transport: Any | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.url = settings.url
        self._fixed_transport = transport
        self._transport: Any | None = None
        self._transport_loop: asyncio.AbstractEventLoop | None = None
        self._clock = clock
        self.breakers: dict[str, CircuitBreaker] = {}
        self._probe: asyncio.Task | None = None

    # ------------------------------------------------------------------ configuration
    def breaker(self, model: str) -> CircuitBreaker:
        breaker = self.breakers.get(model)
        if breaker is None:
            s = self.settings
            breaker = self.breakers[model] = CircuitBreaker(s.breaker_failures, s.breaker_cooldown_s, self._clock)
        return breaker

    def version_of(self, model: str) -> str:
        return self.settings.model_versions.get(model, self.settings.model_version) or DEFAULT_MODEL_VERSION

    def transport(self) -> Any:
        """The tritonclient aio client of the running loop (grpc.aio channels belong to one loop)."""
        if self._fixed_transport is not None:
            return self._fixed_transport
        loop = asyncio.get_running_loop()
        if self._transport is None or self._transport_loop is not loop:
            from tritonclient.grpc.aio import InferenceServerClient

            self._transport = InferenceServerClient(self.url, channel_args=channel_args(self.settings))
            self._transport_loop = loop
        return self._transport

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        transport, self._transport = self._transport, None
        if transport is not None:
            try:
                await transport.close()
            except RuntimeError as err:  # a channel of a loop that is gone (tests run one loop per test)
                log.debug("closing a Triton channel of another loop: %r", err)

    # ------------------------------------------------------------------ calls
    async def infer(
        self,
        model: ModelContract | str,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        *,
        timeout_s: float,
        max_batch_size: int | None = None,
        version: str | None = None,
    ) -> dict[str, np.ndarray]:
        """One model call: ``{input name: [rows, ...] array}`` in, ``{output name: array}`` out. Rows above
        ``max_batch_size`` (default ``triton.max_batch_size``) go out as concurrent slices, concatenated back.
        ``version``: this call's model version (a rollout's pick, server/rollout), else :meth:`version_of`."""
        name = model if isinstance(model, str) else model.name
        rows = len(next(iter(inputs.values())))
        size = max_batch_size or self.settings.max_batch_size
        if rows <= size:
            return await self._infer_once(name, inputs, outputs, timeout_s, version)
        slices = [{k: v[i : i + size] for k, v in inputs.items()} for i in range(0, rows, size)]
        parts = await concurrently(*(self._infer_once(name, part, outputs, timeout_s, version) for part in slices))
        return {out: np.concatenate([p[out] for p in parts], axis=0) for out in outputs}

    async def stream(
        self,
        model: ModelContract | str,
        inputs: Mapping[str, np.ndarray],
        *,
        timeout_s: float,
        is_final: Callable[[Any], bool] = lambda result: False,
    ) -> AsyncIterator[Any]:
        """One request to a decoupled model; yields each response (a tritonclient ``InferResult``) up to the
        one ``is_final`` says is the last. Bounded by ``timeout_s`` as a whole; on an error, a timeout or the
        caller leaving before the final response the stream is cancelled (Triton marks the request cancelled
        and the model stops generating)."""
        name = model if isinstance(model, str) else model.name
        breaker = self._admit(name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        finished = asyncio.Event()
        request = {
            "model_name": name,
            "model_version": self.version_of(name),
            "inputs": _infer_inputs(inputs),
            **self._identity(),
        }

        async def requests() -> AsyncIterator[dict[str, Any]]:
            yield request
            await finished.wait()  # keep the stream open until the caller is done with the responses

        responses = None
        complete = False
        verdict: Callable[[], None] = breaker.release
        try:
            responses = self.transport().stream_infer(requests(), stream_timeout=timeout_s, **self._headers_kw())
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise BackendTimeout(f"{name}: ran past its {timeout_s:.2f}s budget", model=name)
                try:
                    result, error = await asyncio.wait_for(responses.__anext__(), timeout=remaining)
                except asyncio.TimeoutError:
                    raise BackendTimeout(f"{name}: ran past its {timeout_s:.2f}s budget", model=name) from None
                except StopAsyncIteration:
                    raise BackendError(f"{name}: stream closed before the final response", model=name,
                                       reason="backend_unreachable") from None
                verdict = breaker.record_success  # Triton answered: it is up, whatever the answer says
                if error is not None:
                    raise BackendError(f"{name}: model error: {_message(error)}", model=name, reason="model_error")
                complete = is_final(result)
                yield result
                if complete:
                    return
        except BackendTimeout:
            verdict = self._judge_timeout(breaker)
            raise
        except BackendError as err:
            if err.reason == "backend_unreachable":
                verdict = breaker.record_failure
            raise
        except (grpc.aio.AioRpcError, _inference_server_exception()) as err:
            mapped = map_triton_error(name, err)
            verdict = self._verdict(breaker, mapped)
            raise mapped from None
        finally:
            finished.set()
            if responses is not None and not complete:
                responses.cancel()  # Triton marks the request cancelled; the model stops generating
            verdict()

    async def is_ready(self, models: Sequence[str]) -> bool:
        """Triton is up and every one of ``models`` is ready at the version called. Not Triton's server readiness:
        with ``--strict-readiness`` it reads false for the whole of any model's (re)load -- a new version loaded
        by the repository API -- while every loaded version keeps serving (measured: the versions called stayed
        ready throughout), and a reload must not take the service out of rotation."""
        timeout = self.settings.ready_timeout_s
        try:
            transport = self.transport()
            if not await transport.is_server_live(client_timeout=timeout):
                return False
            ready = await asyncio.gather(
                *(transport.is_model_ready(m, self.version_of(m), client_timeout=timeout) for m in models)
            )
            return all(ready)
        except Exception as err:  # noqa: BLE001 -- readiness is a yes/no question; the reason goes to the log
            log.info("triton not ready: %s", err)
            return False

    async def model_metadata(self, model: str, version: str = "") -> dict[str, Any]:
        """Triton's metadata of ``model`` (``version`` "": every version it serves, as Describe reports)."""
        return await self.transport().get_model_metadata(
            model, version, as_json=True, client_timeout=self.settings.ready_timeout_s
        )

    # ------------------------------------------------------------------ internals
    def _admit(self, model: str) -> CircuitBreaker:
        breaker = self.breaker(model)
        if not breaker.allow():
            raise BackendError(f"{model}: circuit open after repeated failures", model=model, reason="circuit_open")
        return breaker

    def _identity(self) -> dict[str, Any]:
        """Triton's request ``id`` (the chat's request id) and the trace context parameter, if any."""
        out: dict[str, Any] = {"request_id": current_request_id()}
        parent = traceparent()
        if parent is not None:
            out["parameters"] = {"traceparent": parent}
        return out

    def _headers_kw(self) -> dict[str, Any]:
        parent = traceparent()
        return {"headers": {"traceparent": parent}} if parent is not None else {}

    async def _infer_once(
        self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str], timeout_s: float,
        version: str | None = None,
    ) -> dict[str, np.ndarray]:
        from tritonclient.grpc import InferRequestedOutput

        breaker = self._admit(model)
        queue_timeout = self.settings.send_queue_timeout
        kwargs: dict[str, Any] = {**self._identity(), **self._headers_kw()}
        if queue_timeout:
            kwargs["timeout"] = max(1, int(timeout_s * 1e6))
        verdict: Callable[[], None] = breaker.release
        try:
            result = await self.transport().infer(
                model,
                _infer_inputs(inputs),
                model_version=version or self.version_of(model),
                outputs=[InferRequestedOutput(name) for name in outputs],
                client_timeout=timeout_s,
                **kwargs,
            )
            verdict = breaker.record_success
        except _inference_server_exception() as err:
            mapped = map_triton_error(model, err, own_queue_timeout=queue_timeout)
            verdict = self._verdict(breaker, mapped)
            raise mapped from None
        finally:
            verdict()
        out = {}
        for name in outputs:
            array = result.as_numpy(name)
            if array is None:
                raise InternalBug(f"{model} answered without output {name}")
            out[name] = array
        return out

    def _verdict(self, breaker: CircuitBreaker, err: BackendError) -> Callable[[], None]:
        if isinstance(err, BackendOverloaded):
            return breaker.release
        if isinstance(err, BackendTimeout):
            return self._judge_timeout(breaker)
        return breaker.record_failure

    def _judge_timeout(self, breaker: CircuitBreaker) -> Callable[[], None]:
        """A timeout: probe Triton's liveness off the caller's path; a failure only if it is dead too."""

        def judge() -> None:
            try:
                probe = self._liveness_probe()
            except RuntimeError:  # no running loop (closing): no verdict
                breaker.release()
                return

            def done(task: asyncio.Task) -> None:
                alive = task.cancelled() or task.exception() is not None or task.result()
                if alive:
                    breaker.release()
                else:
                    log.warning("triton did not answer a liveness probe after a timeout: counting it as a failure")
                    breaker.record_failure()

            probe.add_done_callback(done)

        return judge

    def _liveness_probe(self) -> asyncio.Task:
        """One ServerLive probe at a time; concurrent timeouts share its verdict."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probe_live(), name="triton-liveness-probe")
        return self._probe

    async def _probe_live(self) -> bool:
        """True: Triton answered (alive, maybe slow). Any answer counts -- even an error status other than
        UNAVAILABLE / DEADLINE_EXCEEDED comes from a live server."""
        transport = self.transport()
        probe = getattr(transport, "is_server_live", None)
        if probe is None:  # a test double without the health API: no evidence of death
            return True
        try:
            await probe(client_timeout=self.settings.liveness_probe_s)
            return True
        except grpc.aio.AioRpcError as err:
            return err.code() not in _DEAD_CODES
        except _inference_server_exception() as err:
            status = str(err.status() or "")
            return not any(status.endswith(code.name) for code in _DEAD_CODES)


def _inference_server_exception() -> type[Exception]:
    from tritonclient.utils import InferenceServerException

    return InferenceServerException


def _message(error: Any) -> str:
    message = getattr(error, "message", None)
    return message() if callable(message) else str(error)


_WIRE_DTYPES = {np.dtype(np.float32): "FP32", np.dtype(np.int32): "INT32", np.dtype(np.int64): "INT64"}


def _infer_inputs(inputs: Mapping[str, np.ndarray]) -> list[Any]:
    from tritonclient.grpc import InferInput

    items = []
    for name, array in inputs.items():
        datatype = "BYTES" if array.dtype == object else _WIRE_DTYPES[array.dtype]
        item = InferInput(name, list(array.shape), datatype)
        item.set_data_from_numpy(array)
        items.append(item)
    return items


def bytes_column(texts: Sequence[str]) -> np.ndarray:
    """[n, 1] BYTES tensor (a TYPE_STRING input with dims [1] and batching)."""
    return np.array([[t.encode("utf-8")] for t in texts], dtype=object).reshape(len(texts), 1)
