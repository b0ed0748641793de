"""Tier fallback: large -> small -> template, walked once for a whole answer and for a streamed one.

A tier that is not configured in this deployment, raises :class:`TierUnavailable`, or runs past the time
it was given is skipped for the next one down, recording ``tier_fallback:<from>-><to>`` in degraded. The
template tier always answers. Each attempt gets what is left of the answer deadline.

:meth:`TierRouter.answer` is the chain; an attempt is either one ``generate`` call (:func:`_whole`) or a
parsed stream (:func:`_streamed`). A stream falls back only before its first piece; a tier that fails after
it ends the answer early (its answer is flagged ``stream_interrupted:<tier>``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import time
from contextlib import aclosing
from typing import AsyncIterator, Mapping

from server.errors import TierUnavailable
from server.llm.answer_format import StreamParser, TextEvent, fatal_schema_errors
from server.llm.base import LLMAnswer, LLMRequest, LLMTier
from server.llm.templates import Facts, TemplateTier

log = logging.getLogger(__name__)

CHAIN = ("large", "small", "template")


class TierRouter:
    def __init__(self, template: TemplateTier, tiers: Mapping[str, LLMTier] | None = None) -> None:
        self.template = template
        self.tiers = {k: v for k, v in (tiers or {}).items() if k in ("small", "large")}

    @property
    def available(self) -> tuple[str, ...]:
        return tuple(t for t in CHAIN if t == "template" or t in self.tiers)

    def _chain(self, tier: str) -> tuple[str, ...]:
        return CHAIN[CHAIN.index(tier) :] if tier in CHAIN else ("template",)

    async def answer(
        self, tier: str, request: LLMRequest, facts: Facts, *, stream: bool = False
    ) -> AsyncIterator[str | tuple[LLMAnswer, list[str]]]:
        """Yield the answer's text pieces as they come (``stream`` only), then one ``(answer, degraded)``."""
        degraded: list[str] = []
        deadline = time.perf_counter() + request.timeout_s
        chain = self._chain(tier)
        for current, following in zip(chain, chain[1:] + ("",)):
            if current == "template":
                answer = await self.template.generate(request, facts)
                if stream:
                    yield answer.text
                yield answer, degraded
                return
            impl = self.tiers.get(current)
            left = deadline - time.perf_counter()
            if impl is not None and left > 0:
                attempt = dataclasses.replace(request, timeout_s=left)
                found: LLMAnswer | None = None
                try:
                    async with aclosing(_streamed(impl, attempt, current) if stream else _whole(impl, attempt)) as items:
                        async for item in items:
                            if isinstance(item, LLMAnswer):
                                found = item
                            else:
                                yield item
                except (TierUnavailable, TimeoutError) as err:
                    log.info("tier %s could not answer within %.0f ms: %r", current, left * 1000, err)
                if found is not None:
                    yield found, degraded
                    return
            degraded.append(f"tier_fallback:{current}->{following}")
        raise AssertionError("unreachable: the chain ends with the template tier")

    async def generate(self, tier: str, request: LLMRequest, facts: Facts) -> tuple[LLMAnswer, list[str]]:
        """(answer, degraded reasons)."""
        async for result in self.answer(tier, request, facts):
            pass
        return result  # type: ignore[return-value] -- without ``stream`` the only item is (answer, degraded)

    def stream(self, tier: str, request: LLMRequest, facts: Facts) -> AsyncIterator[str | tuple[LLMAnswer, list[str]]]:
        """Yield answer text pieces (whole paragraphs of the NDJSON answer format), then one ``(answer, degraded)``."""
        return self.answer(tier, request, facts, stream=True)


async def _whole(impl: LLMTier, request: LLMRequest) -> AsyncIterator[LLMAnswer]:
    """One ``generate`` call, bounded by the time the request has left."""
    yield await asyncio.wait_for(impl.generate(request), timeout=request.timeout_s)


async def _streamed(impl: LLMTier, request: LLMRequest, tier: str) -> AsyncIterator[str | LLMAnswer]:
    """The tier's NDJSON stream (server/llm/answer_format.py): each whole text event as a piece, then the answer.

    Fails (raises) only before its first piece; after it, a failure ends the answer with what was parsed."""
    parser = StreamParser()
    started = False
    interrupted: tuple[str, ...] = ()
    usage = _StreamUsage()
    try:
        async with asyncio.timeout(request.timeout_s), aclosing(_open_stream(impl, request, usage)) as deltas:
            async for delta in deltas:
                for event in parser.feed(delta):
                    if isinstance(event, TextEvent) and event.text.strip():
                        yield event.text.strip() + "\n"
                        started = True
    except (TierUnavailable, TimeoutError) as err:
        if not started:
            raise
        log.info("tier %s stream interrupted: %r", tier, err)
        interrupted = (f"stream_interrupted:{tier}",)
    parsed = parser.close()
    flags = ("answer_format_invalid",) if fatal_schema_errors(parsed) else ()
    model = getattr(impl, "model_id", getattr(impl, "model", tier))
    # the tier that answered, like generate(): a local tier standing in for "large" says "small"
    answered = getattr(impl, "name", tier) or tier
    yield LLMAnswer(text=parsed.text, tier=answered, model=model, product_asins=parsed.asins, degraded=(*interrupted, *flags),
                    input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cost_usd=usage.cost_usd)


@dataclasses.dataclass
class _StreamUsage:
    """What a tier's ``stream(request, usage)`` fills in as it ends: the fields of Bedrock's ``StreamUsage`` and
    of the local tier's ``LocalStreamInfo``. Without it a streamed answer carried no tokens or cost (ChatStream's
    usage was always zero, and so was every per-tier cost counter fed by streams)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    stop_reason: str = ""
    finish_reason: str = ""
    raw_text: str = ""
    degraded: list[str] = dataclasses.field(default_factory=list)


def _open_stream(impl: LLMTier, request: LLMRequest, usage: _StreamUsage) -> AsyncIterator[str]:
    """``impl.stream(request, usage)`` where the tier reports usage that way, else ``impl.stream(request)``."""
    try:
        takes_usage = len(inspect.signature(impl.stream).parameters) >= 2
    except (TypeError, ValueError):
        takes_usage = False
    return impl.stream(request, usage) if takes_usage else impl.stream(request)  # type: ignore[call-arg]
