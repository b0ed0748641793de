"""Tier fallback: large -> small -> template.

A tier that is not configured in this deployment, raises :class:`TierUnavailable`, or runs past the time
it was given is skipped for the next one down, recording ``tier_fallback:<from>-><to>`` in degraded. The
template tier always answers. Each attempt gets what is left of the answer deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import AsyncIterator, Mapping

from server.errors import TierUnavailable
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

    async def generate(self, tier: str, request: LLMRequest, facts: Facts) -> tuple[LLMAnswer, list[str]]:
        """(answer, degraded reasons)."""
        degraded: list[str] = []
        deadline = time.perf_counter() + request.timeout_s
        chain = self._chain(tier)
        for current, following in zip(chain, chain[1:] + ("",)):
            if current == "template":
                return await self.template.generate(request, facts), degraded
            impl = self.tiers.get(current)
            left = deadline - time.perf_counter()
            if impl is not None and left > 0:
                attempt = dataclasses.replace(request, timeout_s=left)
                try:
                    return await asyncio.wait_for(impl.generate(attempt), timeout=left), degraded
                except TierUnavailable as err:
                    log.info("tier %s unavailable: %s", current, err)
                except asyncio.TimeoutError:
                    log.info("tier %s ran past its %.0f ms", current, left * 1000)
            degraded.append(f"tier_fallback:{current}->{following}")
        raise AssertionError("unreachable: the chain ends with the template tier")

    async def stream(
        self, tier: str, request: LLMRequest, facts: Facts
    ) -> AsyncIterator[str | tuple[LLMAnswer, list[str]]]:
        """Yield answer text pieces, then one ``(answer, degraded)``.

        LLM tiers stream the NDJSON answer format (server/llm/answer_format.py); only whole text events are
        passed on, each a paragraph. Falls back to the next tier only before the first piece; a tier that
        fails after it ends the answer early (degraded ``stream_interrupted:<tier>``).
        """
        from server.llm.answer_format import StreamParser, TextEvent, fatal_schema_errors

        degraded: list[str] = []
        deadline = time.perf_counter() + request.timeout_s
        chain = self._chain(tier)
        for current, following in zip(chain, chain[1:] + ("",)):
            if current == "template":
                answer = await self.template.generate(request, facts)
                yield answer.text
                yield answer, degraded
                return
            impl = self.tiers.get(current)
            left = deadline - time.perf_counter()
            if impl is not None and left > 0:
                parser = StreamParser()
                started = False
                try:
                    async with asyncio.timeout(left):
                        async for delta in impl.stream(dataclasses.replace(request, timeout_s=left)):
                            for event in parser.feed(delta):
                                if isinstance(event, TextEvent) and event.text.strip():
                                    yield event.text.strip() + "\n"
                                    started = True
                except (TierUnavailable, TimeoutError) as err:
                    log.info("tier %s stream failed: %r", current, err)
                    if not started:
                        degraded.append(f"tier_fallback:{current}->{following}")
                        continue
                    degraded.append(f"stream_interrupted:{current}")
                parsed = parser.close()
                flags = ("answer_format_invalid",) if fatal_schema_errors(parsed) else ()
                model = getattr(impl, "model_id", getattr(impl, "model", current))
                # the tier that answered, like generate(): a local tier standing in for "large" says "small"
                answered = getattr(impl, "name", current) or current
                yield LLMAnswer(text=parsed.text, tier=answered, model=model, product_asins=parsed.asins, degraded=flags), degraded
                return
            degraded.append(f"tier_fallback:{current}->{following}")
