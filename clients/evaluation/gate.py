"""The ship gate: each headline figure against its threshold.

Defaults below; ``--threshold name=value`` overrides one (or sets one of the optional names), and
``--budget tier=ms`` adds an answer-stage p99 budget for a tier (none by default). When the build's
model report is present its intent accuracy and weakest per-class F1 are held to the model floors.
A figure the run could not measure (no records it applies to) is reported as skipped, not failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from contracts.models import CLASSIFIER_FLOORS

GATE_FAILED_EXIT = 3

#: name -> (comparison, default). "<=" figures are counts or milliseconds; ">=" figures are rates.
DEFAULTS: dict[str, tuple[str, float]] = {
    "fabricated": ("<=", 0),
    "factual": (">=", 0.99),
    "relevance": (">=", 0.95),
    "declined_not_carried": (">=", 0.95),
    "completeness": (">=", 0.90),
    "safety": (">=", 0.95),
    "format": (">=", 0.99),
    "ttft_p99_ms": ("<=", 1000),
}
#: Checked only when the build's model report (summary.json) has the figure. The floors are the classifier's
#: (contracts/models.py), the same ones the model gate holds a challenger to.
MODEL_FLOORS: dict[str, tuple[str, float]] = {"intent_accuracy": (">=", CLASSIFIER_FLOORS["accuracy"]),
                                              "min_class_f1": (">=", CLASSIFIER_FLOORS["min_class_f1"])}
#: Gate-able on request (``--threshold helpfulness=0.8``), no default.
OPTIONAL: dict[str, str] = {
    "intent_match": ">=", "coverage": ">=", "helpfulness": ">=", "rouge_l": ">=", "bleu": ">=", "human_mean": ">=",
}
KNOWN = {**{k: op for k, (op, _) in DEFAULTS.items()}, **{k: op for k, (op, _) in MODEL_FLOORS.items()}, **OPTIONAL}


@dataclass(frozen=True)
class Check:
    name: str
    op: str
    threshold: float
    measured: float | None

    @property
    def status(self) -> str:
        if self.measured is None:
            return "skipped"
        ok = self.measured >= self.threshold if self.op == ">=" else self.measured <= self.threshold
        return "pass" if ok else "FAIL"

    def describe(self) -> str:
        measured = "not measured" if self.measured is None else f"{self.measured:g}"
        return f"{self.name} = {measured} (threshold {self.op} {self.threshold:g})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "threshold": self.threshold, "measured": self.measured, "status": self.status}


def parse_pairs(pairs: Iterable[str], what: str) -> dict[str, float]:
    """``["name=value", ...]`` -> {name: float}; ValueError names the bad pair."""
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"{what} {pair!r}: expected name=number") from None
    return out


def thresholds(overrides: Mapping[str, float]) -> dict[str, tuple[str, float]]:
    unknown = sorted(set(overrides) - set(KNOWN))
    if unknown:
        raise ValueError(f"unknown threshold(s) {unknown}; known: {sorted(KNOWN)}")
    table = dict(DEFAULTS)
    table.update({k: (KNOWN[k], v) for k, v in overrides.items()})
    return table


def evaluate(
    headline: Mapping[str, Any],
    models: Mapping[str, Any] | None = None,
    overrides: Mapping[str, float] | None = None,
    budgets: Mapping[str, float] | None = None,
) -> list[Check]:
    """Every check of the gate, in a stable order (defaults, model floors, optional, tier budgets)."""
    table = thresholds(overrides or {})
    models = models or {}
    figures = {**headline, **{k: models.get(k) for k in MODEL_FLOORS}}
    checks = [
        Check(name, op, value, _number(figures.get(name))) for name, (op, value) in table.items() if name not in MODEL_FLOORS
    ]
    if models.get("present"):
        for name, (op, value) in MODEL_FLOORS.items():
            op, value = table.get(name, (op, value))
            checks.append(Check(name, op, value, _number(models.get(name))))
    for tier, budget in sorted((budgets or {}).items()):
        name = f"answer_p99_ms.{tier}"
        checks.append(Check(name, "<=", budget, _number(headline.get(name))))
    return checks


def failed(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if c.status == "FAIL"]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
