"""The seven reversal triggers as written down: name, alert, threshold setting, direction, what each measures and
the reversal action. A leaf (no service state): the trigger job (server/drift/triggers.py) evaluates them on live
traffic, and the build side's model cards (model_repository/lifecycle/cards.py) state the ones that would undo a
version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class Trigger:
    name: str
    alert: str  # the chart's PrometheusRule alert
    setting: str  # the threshold's settings field (triggers.<setting>)
    above: bool  # crossed when the value is above the threshold (else below)
    measures: str
    action: str  # the written reversal action


TRIGGERS: tuple[Trigger, ...] = (
    Trigger("tier_quality_drop", "MangaAssistReversalTierQualityDrop", "tier_quality_drop_points", True,
            "largest drop of a tier's thumbs-up share of rated turns, current window vs the one before (points)",
            "route that tier's intents back to the tier they used before (routing.tiers), or roll back the model/prompt "
            "change deployed in the window; re-run mangaassist eval --gate before routing to it again"),
    Trigger("misclassified_escalation", "MangaAssistReversalMisclassifiedEscalation", "misclassified_escalation_rate", True,
            "turns escalated by the customer whose intent was not escalation, per answered turn",
            "roll the classifier back to the previous stable version (rollout file), export the escalated turns for "
            "labelling (mangaassist drift label-export), then mangaassist retrain (gate, shadow)"),
    Trigger("guardrail_block_rate", "MangaAssistReversalGuardrailBlockRate", "guardrail_block_rate", True,
            "answers blocked by a guardrail per answered turn",
            "revert the last tier/prompt/guardrail-threshold change; if no change was made, route the blocking "
            "intents to the template tier until the blocked answers are reviewed"),
    Trigger("hallucination_rate", "MangaAssistReversalHallucinationRate", "hallucination_rate", True,
            "worst intent's share of scored answers at or above the hallucination alert score",
            "route that intent to the template tier (grounded by construction) and review the hallucination queue "
            "before routing it to an LLM tier again"),
    Trigger("latency_p99", "MangaAssistReversalLatencyP99", "p99_ms", True,
            "p99 of the non-LLM path in ms (every stage but the answer; classify and embed overlap)",
            "revert the last speed/model change (reranker, adapter, model version) or scale out; a new model may not "
            "stay while the path is over its budget"),
    Trigger("cost_per_turn", "MangaAssistReversalCostPerTurn", "cost_per_turn_usd", True,
            "mean USD per answered turn: LLM tokens at their prices plus Triton's cost per model-path turn",
            "route the most expensive intents one tier down (large -> small -> template) until the cost per turn is "
            "under budget"),
    Trigger("classifier_confidence", "MangaAssistReversalClassifierConfidence", "min_confidence", False,
            "mean classifier confidence of model-decided turns",
            "roll the classifier back to the previous stable version if it changed in the window, else treat it as "
            "drift: label the low-confidence turns (the weekly label queue) and mangaassist retrain"),
)
BY_NAME: Mapping[str, Trigger] = {t.name: t for t in TRIGGERS}
