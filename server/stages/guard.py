"""Stages 2b and 8: the synchronous input and output guardrails (implementations in server/guardrails/)."""

from __future__ import annotations

from typing import Sequence

from server.guardrails.base import Guardrails, InputScreen, OutputScreen
from server.llm.base import LLMAnswer
from server.request import RequestContext
from server.retrieval.base import ScoredChunk


def screen_input(guardrails: Guardrails, message: str, ctx: RequestContext) -> InputScreen:
    with ctx.timings.stage("input_guard"):
        return guardrails.screen_input(message)


def screen_output(
    guardrails: Guardrails, answer: LLMAnswer, context: Sequence[ScoredChunk], message: str, ctx: RequestContext
) -> OutputScreen:
    with ctx.timings.stage("output_guard"):
        return guardrails.screen_output(answer, context, message)
