"""The local small LLM tier: SmolLM2-135M-Instruct served by Triton (``llm_small``, decoupled, streaming).

The prompt is the shared layout from :mod:`server.llm.prompts` (system + few-shot + context + message),
sent as JSON chat messages; the model applies SmolLM2's ChatML template itself
(model_repository/backends/llm_model.py). Responses stream over Triton's gRPC bidirectional stream
(``stream_infer``): every response carries ``TEXT_DELTA``, running ``USAGE`` (prompt, generated tokens) and
``FINISH_REASON`` (non-empty on the last one: ``stop`` | ``length`` | ``cancelled``).

A 135M model follows the NDJSON answer format (:mod:`server.llm.answer_format`) only sometimes, so the
output goes through :class:`AnswerNormalizer` line by line: a line that is a valid event passes through
(re-encoded), anything else (prose, broken JSON, fences) becomes a ``text`` event, and at the end the
ASINs found in prose become ``product`` events and an ``end`` event closes the answer. Whatever the model
wrote, :meth:`LocalTier.stream` therefore yields well-formed NDJSON that the router's ``StreamParser``
reads, and :meth:`LocalTier.generate` returns the parsed text; a repair is flagged
``answer_format_repaired``, a hit of ``max_tokens`` ``answer_truncated``.

Budget: the whole call (connect + prefill + generation) is bounded by ``LLMRequest.timeout_s``; on expiry,
Triton being unreachable, or an error response the tier raises :class:`TierUnavailable` and cancels the
stream, which makes the model stop generating (it polls ``request.is_cancelled()`` every token).
The model accepts at most ``max_input_tokens`` (1024) prompt tokens, so the tier drops the lowest-ranked
context chunks until the prompt fits ``max_prompt_chars`` (~3.7 chars per token measured on the prompt
layout; the fixed system + few-shot prefix alone is ~665 tokens), and if the model still rejects it as too
long, retries with half the context (flagged ``context_trimmed``).
Cost is 0 (local compute); tokens come from the model's ``USAGE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import numpy as np

from contracts.models import LLM_SMALL
from server.backends.client import TritonClient
from server.errors import BackendError, BackendTimeout, TierUnavailable
from server.llm import answer_format
from server.llm.answer_format import EndEvent, ProductEvent, TextEvent
from server.llm.base import LLMAnswer, LLMRequest
from server.ids import ASIN_IN_TEXT as _ASIN_IN_TEXT
from server.llm.prompts import Prompt, build_prompt_for
from server.settings import TritonSettings

log = logging.getLogger(__name__)

_PROMPT, _MAX_TOKENS, _TEMPERATURE = (t.name for t in LLM_SMALL.inputs[:3])
_DELTA, _USAGE, _FINISH = (t.name for t in LLM_SMALL.outputs)
#: The text value of a JSON-ish line the model broke ({"type": "text", "text": "... without the end).
_JSONISH_TEXT = re.compile(r'^\{\s*["\']type["\']\s*:\s*["\']text["\']\s*,\s*["\']text["\']\s*:\s*["\'](.*?)["\']?\s*\}?\s*,?$')
#: answer_format parse errors that mean a line's content was not understood as an event.
_LOST = frozenset({"invalid_json", "bad_event", "not_ndjson", "unknown_type"})


@dataclass
class LocalStreamInfo:
    """Filled in by :meth:`LocalTier.stream` as it runs (pass one in to read it at the end)."""

    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str = ""
    degraded: list[str] = field(default_factory=list)
    raw_text: str = ""


class AnswerNormalizer:
    """Model output (NDJSON, prose or a mix) in, well-formed answer-format NDJSON out, line by line.

    ``feed(delta)`` returns NDJSON for every line the delta completed; ``close(truncated)`` flushes the
    last line and appends product events for ASINs seen in prose, then the end event.
    """

    def __init__(self) -> None:
        self._buf = ""
        self._ended = False
        self._closed = False
        self.repaired = False
        self._asins_listed: list[str] = []
        self._asins_in_prose: list[str] = []

    def feed(self, delta: str) -> str:
        self._buf += delta
        out = []
        while (nl := self._buf.find("\n")) >= 0:
            line, self._buf = self._buf[:nl], self._buf[nl + 1 :]
            out.append(self._line(line, terminated=True))
        return "".join(out)

    def close(self, *, truncated: bool = False) -> str:
        if self._closed:
            return ""
        self._closed = True
        out = [self._line(self._buf, terminated=False, truncated=truncated)]
        self._buf = ""
        if not self._ended:
            extra = [a for a in self._asins_in_prose if a not in self._asins_listed]
            out.append(answer_format.encode([ProductEvent(a) for a in extra] + [EndEvent()]))
            self._ended = True
        return "".join(out)

    def _line(self, raw: str, *, terminated: bool, truncated: bool = False) -> str:
        line = raw.strip()
        if not line or self._ended:
            return ""
        if line.startswith("```"):
            self.repaired = True
            return ""
        parsed = answer_format.parse(line + "\n")
        lost = [e for e in parsed.errors if e.split(":", 1)[0] in _LOST]
        if parsed.events and not lost:
            if parsed.errors:
                self.repaired = True
            for ev in parsed.events:
                if isinstance(ev, ProductEvent) and ev.asin not in self._asins_listed:
                    self._asins_listed.append(ev.asin)
                elif isinstance(ev, TextEvent):
                    self._note_prose_asins(ev.text)
            if isinstance(parsed.events[-1], EndEvent):
                # Close it ourselves so ASINs mentioned only in text still get product events first.
                body = [e for e in parsed.events if not isinstance(e, EndEvent)]
                extra = [a for a in self._asins_in_prose if a not in self._asins_listed]
                self._ended = True
                return answer_format.encode([*body, *(ProductEvent(a) for a in extra), EndEvent()])
            return answer_format.encode(parsed.events)
        if line.startswith("{") and not terminated:
            return ""  # a half-written JSON event (cut by max_tokens): never repair it (answer_format's rule)
        self.repaired = True
        text = _text_of_broken_event(line) if line.startswith("{") else line
        if not text or not text.strip():
            return ""
        self._note_prose_asins(text)
        return answer_format.encode([TextEvent(text.strip())])

    def _note_prose_asins(self, text: str) -> None:
        for asin in _ASIN_IN_TEXT.findall(text):
            if asin not in self._asins_in_prose:
                self._asins_in_prose.append(asin)


def _text_of_broken_event(line: str) -> str | None:
    """The customer-facing text inside a JSON-looking line the parser could not use, if any."""
    try:
        obj = json.loads(line)
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        for key in ("text", "content", "answer", "message"):
            if isinstance(obj.get(key), str):
                return obj[key]
        return None  # e.g. a product event without an ASIN: nothing to show
    match = _JSONISH_TEXT.match(line)
    if match:
        return match.group(1).replace('\\"', '"')
    return None if re.match(r'^\{\s*"type"\s*:\s*"(product|end)"', line) else line


class LocalTier:
    """An :class:`server.llm.base.LLMTier` backed by the Triton-served ``llm_small`` model.

    Calls go through the process's one :class:`~server.backends.client.TritonClient` (``triton``): the same
    channel, per-model circuit breaker, error mapping and request ids as every other model call. Without
    one the tier owns a client for ``triton_url`` (or borrows ``client``, a tritonclient-like transport, in tests).
    """

    def __init__(
        self,
        name: str = "small",
        triton_url: str = "localhost:8001",
        model_name: str = LLM_SMALL.name,
        model_label: str = "smollm2-135m-instruct",
        catalog: Any | None = None,
        *,
        max_prompt_chars: int = 3400,
        max_new_tokens: int = 0,
        client: Any | None = None,
        triton: TritonClient | None = None,
    ) -> None:
        """``max_new_tokens``: a cap on the route's ``max_tokens`` for this model (0 = none)."""
        self.name = name
        self.max_new_tokens = max_new_tokens
        self.model_name = model_name
        self.model_id = model_label  # what the router reports as the answer's model
        self.model = model_label
        self.max_prompt_chars = max_prompt_chars
        self._price_of = getattr(catalog, "price_of", None) if catalog is not None else None
        self._owns_triton = triton is None
        self.triton = triton if triton is not None else TritonClient(TritonSettings(url=triton_url), transport=client)
        self.triton_url = self.triton.url

    # ---------------------------------------------------------------- prompt
    def prompt(self, request: LLMRequest) -> Prompt:
        """The shared prompt, with the lowest-ranked context dropped until it fits the model's window."""
        context = list(request.context)
        while True:
            prompt = build_prompt_for(dataclasses.replace(request, context=context), price_of=self._price_of)
            size = len(prompt.system) + len(prompt.final_user) + sum(
                len(a) + len(b) for a, b in (*prompt.few_shot, *prompt.history))
            if size <= self.max_prompt_chars or not context:
                return prompt
            context.pop()  # chunks arrive best first

    def payload(self, request: LLMRequest) -> str:
        return json.dumps({"messages": self.prompt(request).to_chat()}, ensure_ascii=False)

    # ---------------------------------------------------------------- transport
    async def close(self) -> None:
        if self._owns_triton:
            await self.triton.close()

    def _inputs(self, request: LLMRequest) -> dict[str, np.ndarray]:
        return {
            _PROMPT: np.array([self.payload(request).encode("utf-8")], dtype=np.object_),
            _MAX_TOKENS: np.array([max(1, self._token_cap(request.max_tokens))], dtype=np.int32),
            _TEMPERATURE: np.array([max(0.0, float(request.temperature))], dtype=np.float32),
        }

    def _token_cap(self, max_tokens: int) -> int:
        return min(int(max_tokens), self.max_new_tokens) if self.max_new_tokens > 0 else int(max_tokens)

    def _unavailable(self, message: str, *, retryable: bool) -> TierUnavailable:
        return TierUnavailable(f"local llm {self.model_name}: {message}", tier=self.name, retryable=retryable)

    async def raw_stream(self, request: LLMRequest, info: LocalStreamInfo | None = None) -> AsyncIterator[str]:
        """The model's own text deltas as Triton streams them (no answer-format normalisation)."""
        info = info if info is not None else LocalStreamInfo()
        if request.timeout_s <= 0:
            raise self._unavailable("no time budget left", retryable=False)
        stream = self.triton.stream(
            self.model_name, self._inputs(request), timeout_s=request.timeout_s, is_final=lambda r: bool(_text(r, _FINISH))
        )
        try:
            async with contextlib.aclosing(stream) as responses:
                async for result in responses:
                    delta = _text(result, _DELTA)
                    usage = result.as_numpy(_USAGE).reshape(-1)
                    info.input_tokens, info.output_tokens = int(usage[0]), int(usage[1])
                    reason = _text(result, _FINISH)
                    if delta:
                        info.raw_text += delta
                        yield delta
                    if reason:
                        info.finish_reason = reason
                        return
            raise self._unavailable("stream closed before the final response", retryable=True)
        except BackendTimeout:
            raise self._unavailable(f"ran past its {request.timeout_s:.2f}s budget", retryable=False) from None
        except BackendError as err:
            # unreachable / circuit open / overloaded: a later request may well succeed; a model error will not
            raise self._unavailable(err.message, retryable=err.reason != "model_error") from None

    async def stream(self, request: LLMRequest, info: LocalStreamInfo | None = None) -> AsyncIterator[str]:
        """Yield well-formed answer-format NDJSON deltas (each a whole line or several)."""
        info = info if info is not None else LocalStreamInfo()
        normalizer = AnswerNormalizer()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + request.timeout_s
        attempt = request
        while True:
            started = False
            try:
                async with contextlib.aclosing(self.raw_stream(attempt, info)) as deltas:
                    async for delta in deltas:
                        started = True
                        out = normalizer.feed(delta)
                        if out:
                            yield out
                break
            except TierUnavailable as err:
                # The chars-per-token estimate was too optimistic: retry once per halving of the context
                # (the model rejects before any prefill, so this costs one round trip).
                if started or "max_input_tokens" not in str(err) or not attempt.context:
                    raise
                left = deadline - loop.time()
                context = list(attempt.context)[: len(attempt.context) // 2]
                log.info("local llm prompt too long; retrying with %d context chunks", len(context))
                attempt = dataclasses.replace(attempt, context=context, timeout_s=left)
                if "context_trimmed" not in info.degraded:
                    info.degraded.append("context_trimmed")
        tail = normalizer.close(truncated=info.finish_reason == "length")
        if normalizer.repaired:
            info.degraded.append("answer_format_repaired")
        if info.finish_reason == "length":
            info.degraded.append("answer_truncated")
        if tail:
            yield tail

    async def warm_up(self, timeout_s: float = 30.0) -> None:
        """One 1-token request with the shared prompt prefix, so the model caches its KV (call at start-up).

        The first real request then prefills only its own context + message (~150 ms instead of ~3 s for
        the ~770-token prompt on 2 cores). Raises TierUnavailable like any call.
        """
        request = LLMRequest(intent="chitchat", user_message="hello", context=(), temperature=0.0,
                             max_tokens=1, timeout_s=timeout_s, session_id="warmup")
        async for _ in self.raw_stream(request):
            pass

    async def generate(self, request: LLMRequest) -> LLMAnswer:
        info = LocalStreamInfo()
        started = time.perf_counter()
        ndjson = "".join([d async for d in self.stream(request, info)])
        parsed = answer_format.parse(ndjson)
        degraded = list(info.degraded)
        if not parsed.text.strip():
            degraded.append("answer_empty")
        log.debug("local llm: %d+%d tokens in %.2fs (%s)", info.input_tokens, info.output_tokens,
                  time.perf_counter() - started, info.finish_reason)
        return LLMAnswer(
            text=parsed.text,
            tier=self.name,
            model=self.model_id,
            product_asins=parsed.asins,
            input_tokens=info.input_tokens,
            output_tokens=info.output_tokens,
            cost_usd=0.0,
            degraded=tuple(degraded),
        )


def _text(result: Any, name: str) -> str:
    """The one string of a [1] BYTES output."""
    value = result.as_numpy(name).reshape(-1)[0]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
