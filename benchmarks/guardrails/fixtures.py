"""Each guardrail measured on its labelled fixtures (``tests/fixtures/guardrails/*.jsonl``): precision, recall and
false-block rate, one guardrail at a time on its own file (``positive`` = it should act).

    python -m benchmarks.guardrails.fixtures [fixtures_dir]

The suite measured is the service's own (server/guardrails/suite.py ``GuardrailSuite``); tests/unit/test_guardrails.py
holds the figures to their floors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from server.guardrails.catalog import InMemoryCatalog
from server.guardrails.suite import GuardrailSuite

DEFAULT_FIXTURES_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "guardrails"


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


if __name__ == "__main__":  # python -m benchmarks.guardrails.fixtures [fixtures_dir]
    import sys

    print(format_report(evaluate_fixtures(sys.argv[1] if len(sys.argv) > 1 else None)))
