"""What one output guardrail returns: the repaired text/ASINs plus the actions it took."""

from __future__ import annotations

from dataclasses import dataclass

from server.guardrails.base import GuardrailAction


@dataclass(frozen=True)
class CheckResult:
    text: str
    asins: tuple[str, ...]
    actions: tuple[GuardrailAction, ...] = ()
    needs_fallback: bool = False  # nothing safe is left: the pipeline answers from the template tier

    @property
    def acted(self) -> bool:
        return bool(self.actions) or self.needs_fallback
