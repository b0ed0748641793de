"""Stage 7: the answer, from the routed tier with fallback (server/llm/router.py), whole or streamed."""

from __future__ import annotations

from typing import AsyncIterator, Sequence

from server.errors import InternalBug
from server.llm.base import LLMAnswer, LLMRequest
from server.llm.router import TierRouter
from server.llm.templates import Facts
from server.request import RequestContext
from server.retrieval.base import ScoredChunk
from server.stages.routing import Route


def build_request(
    route: Route, message: str, context: Sequence[ScoredChunk], ctx: RequestContext, session_id: str,
    history: Sequence[tuple[str, str]] = (),
) -> LLMRequest:
    """``history``: the session's earlier (customer, answer) turns, for the LLM tiers' prompt."""
    return LLMRequest(
        intent=route.intent,
        user_message=message,
        context=tuple(context),
        temperature=route.temperature,
        max_tokens=route.max_tokens,
        timeout_s=ctx.budget.answer_timeout(),
        session_id=session_id,
        history=tuple(history),
    )


async def answer(
    router: TierRouter, route: Route, request: LLMRequest, facts: Facts, ctx: RequestContext, *, stream: bool = False
) -> AsyncIterator[str | LLMAnswer]:
    """Yield the answer's text pieces as the tier streams them (``stream`` only), then the :class:`LLMAnswer`;
    its fallbacks and flags go to ``ctx.degraded``."""
    found: tuple[LLMAnswer, list[str]] | None = None
    with ctx.timings.stage("answer"):
        async for item in router.answer(route.tier, request, facts, stream=stream):
            if isinstance(item, str):
                yield item
            else:
                found = item
    if found is None:
        raise InternalBug("the tier router ended without an answer")
    result, degraded = found
    for reason in (*degraded, *result.degraded):
        ctx.degrade(reason)
    yield result
