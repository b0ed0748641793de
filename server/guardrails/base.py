"""Guardrail contract: the pipeline screens input before any model sees it and output before the caller does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from server.llm.base import LLMAnswer
from server.retrieval.base import ScoredChunk


@dataclass(frozen=True)
class GuardrailAction:
    guardrail: str  # "pii", "prompt_injection", "asin", "price", "competitor", "schema"
    action: str  # "redacted" | "removed" | "rewritten" | "blocked" | "fallback"
    detail: str = ""


@dataclass(frozen=True)
class InputScreen:
    text: str  # the message with PII redacted; what LLMs may see
    actions: tuple[GuardrailAction, ...] = ()
    blocked: bool = False  # e.g. prompt injection: answer with a safe template, never call an LLM


@dataclass(frozen=True)
class OutputScreen:
    answer: LLMAnswer  # repaired answer (invalid ASINs removed, prices fixed, PII redacted)
    actions: tuple[GuardrailAction, ...] = ()
    needs_fallback: bool = False  # could not repair: the pipeline must answer from the template tier


class Guardrails(Protocol):
    def screen_input(self, message: str) -> InputScreen: ...

    def screen_output(
        self, answer: LLMAnswer, context: Sequence[ScoredChunk], message: str | None = None
    ) -> OutputScreen: ...


class PassThroughGuardrails:
    """No-op guardrails for unit tests of other stages."""

    def screen_input(self, message: str) -> InputScreen:
        return InputScreen(text=message)

    def screen_output(
        self, answer: LLMAnswer, context: Sequence[ScoredChunk], message: str | None = None
    ) -> OutputScreen:
        return OutputScreen(answer=answer)
