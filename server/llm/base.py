"""The LLM tier contract. Template, local (Triton-served SmolLM2) and Bedrock tiers all implement it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import AsyncIterator, Protocol, Sequence

from server.retrieval.base import ScoredChunk


@dataclass(frozen=True)
class LLMRequest:
    intent: str
    user_message: str  # already PII-redacted by the input guardrail
    context: Sequence[ScoredChunk]
    temperature: float
    max_tokens: int
    timeout_s: float  # what is left of the caller's budget for this call
    session_id: str = ""
    #: the session's last turns, oldest first: (customer message as redacted, answer) -- follow-ups in the prompt
    history: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LLMAnswer:
    text: str
    tier: str  # "template" | "small" | "large"
    model: str  # e.g. "template", "smollm2-135m-instruct", "anthropic.claude-3-haiku..."
    product_asins: tuple[str, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    degraded: tuple[str, ...] = field(default_factory=tuple)


class LLMTier(Protocol):
    """``generate`` raises :class:`server.errors.TierUnavailable` when it cannot answer in time."""

    name: str  # "template" | "small" | "large"

    async def generate(self, request: LLMRequest) -> LLMAnswer: ...

    def stream(self, request: LLMRequest) -> AsyncIterator[str]:
        """Yield answer text deltas; the caller assembles and validates the whole answer."""
        ...
