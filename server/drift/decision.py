""""Model problem or data problem?" -- the source system's decision table, applied to the drift signals and
the golden-set probe before anyone retrains.

| golden-set accuracy | production confidence | new pattern clusters | cause | action |
|---|---|---|---|---|
| holding | falling | - | ``data_shift`` | the inputs moved, the model did not: sample the low-confidence turns for labelling |
| falling | falling | - | ``model_problem`` | the model itself got worse: roll back / retrain |
| falling | holding | - | ``model_problem`` | a regression on known data (a bad version): roll back |
| any | any | yes | + ``new_data_needed`` | label the new cluster's samples, add them to the training data |
| holding | holding | - | + ``traffic_mix`` when the intent mix or the embeddings moved | watch capacity and routing |
| holding | holding | no | ``healthy`` when nothing moved | nothing |
| unknown | falling | - | ``unexplained_confidence_drop`` | run the golden probe before deciding |

"Falling" confidence: below ``min_confidence`` or more than 3 points below the reference window's mean.
"Falling" golden accuracy: more than ``golden_drop_points`` below its baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.drift.signals import DriftSignals
from server.settings import DriftSettings

CONFIDENCE_DROP = 0.03

ACTIONS = {
    "healthy": "nothing to do",
    "traffic_mix": "the mix of requests moved, the model copes: check capacity and tier routing, no retraining",
    "data_shift": "inputs moved away from the training data while the model holds on known data: export the "
                  "low-confidence turns for labelling (mangaassist drift label-export), retrain on them",
    "model_problem": "the model is worse on the golden set: roll back to the previous version, then retrain",
    "new_data_needed": "a new pattern cluster appeared: label its samples and add them to the training data",
    "unexplained_confidence_drop": "confidence fell but the golden probe is unavailable: run it before deciding",
    "insufficient_data": "too few turns in a window to decide",
}


@dataclass(frozen=True)
class GoldenProbe:
    accuracy: float  # now
    baseline: float  # the version's accuracy when it shipped (first probe / build report)


@dataclass(frozen=True)
class Decision:
    cause: str  # the primary cause (ACTIONS key)
    causes: tuple[str, ...]
    evidence: tuple[str, ...]

    @property
    def action(self) -> str:
        return " / ".join(ACTIONS[c] for c in self.causes)


def decide(signals: DriftSignals, golden: GoldenProbe | None, cfg: DriftSettings = DriftSettings()) -> Decision:
    if not signals.sufficient:
        return Decision("insufficient_data", ("insufficient_data",), signals.notes)
    evidence = [n for n in signals.notes if n.startswith("classifier unavailable")]
    conf, ref = signals.confidence_current, signals.confidence_reference
    conf_falling = conf is not None and (conf < cfg.min_confidence or (ref is not None and ref - conf > CONFIDENCE_DROP))
    if conf is not None:
        evidence.append(f"mean confidence {conf:.3f} (reference {ref:.3f})" if ref is not None else f"mean confidence {conf:.3f}")
    golden_falling = None
    if golden is not None:
        golden_falling = (golden.baseline - golden.accuracy) * 100 > cfg.golden_drop_points
        evidence.append(f"golden accuracy {golden.accuracy:.3f} (baseline {golden.baseline:.3f})")
    causes: list[str] = []
    if golden_falling:
        causes.append("model_problem")
    elif conf_falling:
        causes.append("data_shift" if golden_falling is False else "unexplained_confidence_drop")
    if signals.alarms.get("new_patterns"):
        causes.append("new_data_needed")
        for p in signals.new_patterns:
            evidence.append(f"new cluster: {p.size} turns ({p.share:.1%}), terms {', '.join(p.new_terms) or '-'}")
    moved = [a for a in ("intent_share", "embedding") if signals.alarms.get(a)]
    if moved and not {"data_shift", "model_problem"} & set(causes):
        causes.append("traffic_mix")  # what moved is the mix of requests, and nothing says the model suffers
    if not causes:
        causes.append("healthy")
    if signals.alarms.get("intent_share"):
        evidence.append(f"{signals.max_shift_intent} share {signals.max_shift_points:+.1f} points")
    if signals.embedding_kl is not None:
        evidence.append(f"embedding KL {signals.embedding_kl:.3f}")
    return Decision(causes[0], tuple(causes), tuple(evidence))
