"""Stage 7: the answer, from the routed tier with fallback (server/llm/router.py)."""

from __future__ import annotations

from typing import Sequence

from server.llm.base import LLMAnswer, LLMRequest
from server.llm.router import TierRouter
from server.llm.templates import Facts
from server.request import RequestContext
from server.retrieval.base import ScoredChunk
from server.stages.routing import Route


def build_request(
    route: Route, message: str, context: Sequence[ScoredChunk], ctx: RequestContext, session_id: str
) -> LLMRequest:
    return LLMRequest(
        intent=route.intent,
        user_message=message,
        context=tuple(context),
        temperature=route.temperature,
        max_tokens=route.max_tokens,
        timeout_s=ctx.budget.answer_timeout(),
        session_id=session_id,
    )


async def answer(router: TierRouter, route: Route, request: LLMRequest, facts: Facts, ctx: RequestContext) -> LLMAnswer:
    with ctx.timings.stage("answer"):
        result, degraded = await router.generate(route.tier, request, facts)
    for reason in (*degraded, *result.degraded):
        ctx.degrade(reason)
    return result
