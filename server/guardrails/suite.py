"""The synchronous guardrail suite the pipeline runs around every LLM call, plus its fixture evaluation.

Input  (before any model): PII redaction -> prompt-injection score (blocked above the threshold).
Output (before the caller): schema -> system-prompt leak -> PII -> competitors -> ASINs -> prices -> order ids
and policy figures (``figures.py``: only the customer's own order id, only figures found in the store's data).
Repairs are surgical (a sentence removed, a price rewritten); ``needs_fallback`` only when nothing safe
is left, and then the pipeline answers from the template tier.

:func:`evaluate_fixtures` replays the labelled fixtures (``tests/fixtures/guardrails/*.jsonl``) through
each guardrail on its own and reports precision, recall and false-block rate (a report and the unit
tests use it).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from server.guardrails._text import meaningful
from server.guardrails.asin import AsinGuardrail
from server.guardrails.base import GuardrailAction, InputScreen, OutputScreen
from server.guardrails.catalog import CatalogLike, InMemoryCatalog
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

DEFAULT_FIXTURES_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "guardrails"


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


# --- fixture evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FixtureMetrics:
    guardrail: str
    n: int
    tp: int
    fp: int
    fn: int
    tn: int
    wrong_ids: tuple[str, ...] = ()

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def false_block_rate(self) -> float:
        """Share of benign cases the guardrail acted on."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    def as_dict(self) -> dict:
        return {
            "guardrail": self.guardrail, "n": self.n, "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
            "precision": round(self.precision, 4), "recall": round(self.recall, 4),
            "false_block_rate": round(self.false_block_rate, 4), "wrong_ids": list(self.wrong_ids),
        }


def load_fixture(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _measure(name: str, rows: list[dict], fired: Callable[[dict], bool]) -> FixtureMetrics:
    tp = fp = fn = tn = 0
    wrong = []
    for row in rows:
        got, want = fired(row), bool(row["positive"])
        if got and want:
            tp += 1
        elif got:
            fp += 1
        elif want:
            fn += 1
        else:
            tn += 1
        if got != want:
            wrong.append(row.get("id", "?"))
    return FixtureMetrics(name, len(rows), tp, fp, fn, tn, tuple(wrong))


def evaluate_fixtures(fixtures_dir: str | Path | None = None, settings: object | None = None) -> dict[str, FixtureMetrics]:
    """Precision / recall / false-block rate per guardrail on the labelled fixtures.

    Each guardrail is measured on its own file (``positive`` = it should act). ``injection_holdout`` is
    reported separately from ``injection``.
    """
    root = Path(fixtures_dir) if fixtures_dir is not None else DEFAULT_FIXTURES_DIR
    suite = GuardrailSuite(InMemoryCatalog.from_jsonl(root / "catalog.jsonl"), settings)
    checks: dict[str, Callable[[dict], bool]] = {
        "asin": lambda r: suite.asin.check(r["text"], r.get("asins", ())).acted,
        "price": lambda r: suite.price.check(r["text"], r.get("asins", ())).acted,
        "pii": lambda r: bool(suite.pii.redact(r["text"]).kinds),
        "competitor": lambda r: suite.competitor.check(r["text"]).acted,
        "injection": lambda r: suite.injection.score(r["text"]).blocked,
        "injection_holdout": lambda r: suite.injection.score(r["text"]).blocked,
        "schema": lambda r: suite.schema.check_raw(r["raw"]).needs_fallback,
        "leak": lambda r: suite.leak.leaked(r["text"]) is not None,
    }
    out = {}
    for name, fired in checks.items():
        path = root / f"{name}.jsonl"
        if path.exists():
            out[name] = _measure(name, load_fixture(path), fired)
    return out


def format_report(metrics: dict[str, FixtureMetrics]) -> str:
    lines = [f"{'guardrail':<18} {'n':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'tn':>4} {'prec':>6} {'recall':>6} {'fbr':>6}"]
    for m in metrics.values():
        lines.append(
            f"{m.guardrail:<18} {m.n:>4} {m.tp:>4} {m.fp:>4} {m.fn:>4} {m.tn:>4} "
            f"{m.precision:>6.3f} {m.recall:>6.3f} {m.false_block_rate:>6.3f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # python -m server.guardrails.suite [fixtures_dir]
    import sys

    print(format_report(evaluate_fixtures(sys.argv[1] if len(sys.argv) > 1 else None)))
