"""The build report's measurement of the rule fast path: precision and coverage on labelled messages.

The rules themselves are the service's (``server/stages/rules.py``: ``match``, the regex fast path before the
classifier); this is their evaluation on the generated intent splits and the hand-written fixture, which runs
at build time (``summary.json``'s ``rule_fast_path``) and in ``tests/unit/test_rules.py``. The build imports
only ``match``, the thing it measures (a pure function of the text).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from contracts.models import INTENT_LABELS
from model_repository.training.common import read_jsonl
from server.stages.rules import match


def evaluate(examples: Iterable[Mapping[str, Any] | tuple[str, str]]) -> dict[str, Any]:
    """Precision/coverage of the rules on labelled examples (``{"text", "label"}`` or ``(text, label)``).

    ``precision``: correct / fired (``None`` when nothing fired); ``coverage``: fired / examples.
    ``per_intent[label]``: for each gold label, ``support`` (examples), ``fired`` (rule decided an example
    with this gold label), ``predicted`` (rule answered this intent), ``correct``, ``precision``
    (correct / predicted) and ``coverage`` (correct / support). ``per_rule`` counts fires and hits.
    """
    per_intent = {label: {"support": 0, "fired": 0, "predicted": 0, "correct": 0} for label in INTENT_LABELS}
    per_rule: dict[str, dict[str, int]] = {}
    total = fired = correct = 0
    for ex in examples:
        text, label = (ex["text"], ex["label"]) if isinstance(ex, Mapping) else ex
        total += 1
        per_intent.setdefault(label, {"support": 0, "fired": 0, "predicted": 0, "correct": 0})
        per_intent[label]["support"] += 1
        m = match(text)
        if m is None:
            continue
        fired += 1
        hit = m.intent == label
        correct += hit
        per_intent[label]["fired"] += 1
        per_intent[m.intent]["predicted"] += 1
        per_intent[m.intent]["correct"] += hit
        rule = per_rule.setdefault(m.rule, {"fired": 0, "correct": 0})
        rule["fired"] += 1
        rule["correct"] += hit
    for stats in per_intent.values():
        stats["precision"] = stats["correct"] / stats["predicted"] if stats["predicted"] else None
        stats["coverage"] = stats["correct"] / stats["support"] if stats["support"] else None
    for stats in per_rule.values():
        stats["precision"] = stats["correct"] / stats["fired"]
    return {
        "n": total,
        "fired": fired,
        "correct": correct,
        "precision": correct / fired if fired else None,
        "coverage": fired / total if total else 0.0,
        "per_intent": per_intent,
        "per_rule": per_rule,
    }


def rules_report(data_dir: Path, handwritten: Path | None = None) -> dict[str, Any]:
    """:func:`evaluate` on the intent splits of ``data_dir`` (and the hand-written fixture when it exists)."""
    out = {split: evaluate(read_jsonl(Path(data_dir) / "intents" / f"{split}.jsonl")) for split in ("train", "validation", "test")}
    if handwritten is not None and handwritten.exists():
        out["handwritten"] = evaluate(read_jsonl(handwritten))
    return out
