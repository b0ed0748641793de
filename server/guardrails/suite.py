"""The synchronous guardrail suite the pipeline runs around every LLM call, plus its fixture evaluation.

Input  (before any model): PII redaction -> prompt-injection score (blocked above the threshold).
Output (before the caller): schema -> system-prompt leak -> PII -> competitors -> ASINs -> prices -> order ids
and policy figures (``figures.py``: only the customer's own order id, only figures found in the store's data).
Repairs are surgical (a sentence removed, a price rewritten); ``needs_fallback`` only when nothing safe
is left, and then the pipeline answers from the template tier.

Measuring each guardrail on the labelled fixtures is offline work: benchmarks/guardrails/fixtures.py.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from server.guardrails._text import meaningful
from server.guardrails.asin import AsinGuardrail
from server.guardrails.base import GuardrailAction, InputScreen, OutputScreen
from server.guardrails.catalog import CatalogLike
from server.guardrails.competitor import DEFAULT_COMPETITORS, CompetitorGuardrail
from server.guardrails.figures import FiguresGuardrail
from server.guardrails.injection import InjectionDetector, LeakDetector
from server.guardrails.injection_model import load_model
from server.guardrails.pii import PiiRedactor
from server.guardrails.price import PriceGuardrail
from server.guardrails.result import CheckResult
from server.guardrails.schema import SchemaGuardrail
from server.llm.base import LLMAnswer
from server.llm.prompts import PROMPT_CANARY, SYSTEM_PROMPT
from server.retrieval.base import ScoredChunk
from server.settings import GuardrailSettings

def _config_from(settings: object | None) -> GuardrailSettings:
    """The suite's knobs: ``settings.guardrails`` (their one home), given that section, the service settings or
    nothing (the defaults)."""
    if settings is None:
        return GuardrailSettings()
    return getattr(settings, "guardrails", settings)


class GuardrailSuite:
    """Implements :class:`server.guardrails.base.Guardrails`."""

    def __init__(self, catalog: CatalogLike, settings: GuardrailSettings | object | None = None) -> None:
        self.config = _config_from(settings)
        self.pii = PiiRedactor()
        model = load_model(self.config.injection_model) if self.config.injection_model else None
        self.injection = InjectionDetector(self.config.injection_threshold, model=model)
        self.leak = LeakDetector((SYSTEM_PROMPT,), canaries=(PROMPT_CANARY,), n=self.config.leak_ngram)
        self.schema = SchemaGuardrail()
        competitors = self.config.competitors  # None: the built-in list
        self.competitor = CompetitorGuardrail(dict(competitors) if competitors is not None else dict(DEFAULT_COMPETITORS))
        self.asin = AsinGuardrail(catalog)
        self.price = PriceGuardrail(catalog)
        self.figures = FiguresGuardrail(catalog)

    # --- input -----------------------------------------------------------------------------------
    def screen_input(self, message: str) -> InputScreen:
        redaction = self.pii.redact(message)
        verdict = self.injection.score(message)
        actions = list(redaction.actions)
        if verdict.blocked:
            actions.append(verdict.action)
        return InputScreen(text=redaction.text, actions=tuple(actions), blocked=verdict.blocked)

    # --- output ----------------------------------------------------------------------------------
    def screen_output(
        self, answer: LLMAnswer, context: Sequence[ScoredChunk], message: str | None = None
    ) -> OutputScreen:
        """``message``: the customer's redacted message (order ids it names are the only ones an answer may state)."""
        actions: list[GuardrailAction] = []
        text, asins = answer.text, tuple(answer.product_asins)

        def done(needs_fallback: bool) -> OutputScreen:
            repaired = dataclasses.replace(answer, text=text, product_asins=asins)
            return OutputScreen(answer=repaired, actions=tuple(actions), needs_fallback=needs_fallback)

        steps: list[Callable[[str, tuple[str, ...]], CheckResult]] = [
            lambda t, a: self.schema.check(t, a, answer.degraded),
            self._leak_check,
            self._pii_check,
            self.competitor.check,
            self.asin.check,
            lambda t, a: self.price.check(t, a, context),
            lambda t, a: self.figures.check(t, a, context, message),
        ]
        for step in steps:
            result = step(text, asins)
            actions.extend(result.actions)
            text, asins = result.text, result.asins
            if result.needs_fallback:
                return done(True)
        if actions and not meaningful(text):
            actions.append(GuardrailAction("schema", "fallback", "nothing meaningful left after repairs"))
            return done(True)
        return done(False)

    def _leak_check(self, text: str, asins: tuple[str, ...]) -> CheckResult:
        why = self.leak.leaked(text)
        if why is None:
            return CheckResult(text, asins)
        return CheckResult(text, asins, (GuardrailAction("prompt_injection", "blocked", f"system prompt leak: {why}"),),
                           needs_fallback=True)

    def _pii_check(self, text: str, asins: tuple[str, ...]) -> CheckResult:
        if not self.config.redact_output_pii:
            return CheckResult(text, asins)
        redaction = self.pii.redact(text)
        return CheckResult(redaction.text, asins, redaction.actions)
