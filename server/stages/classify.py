"""Stage 4a: the intent classifier on the model backend (after the rule fast path missed)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from contracts.models import VERSIONED_CLASSIFIER
from server.backends.base import NUM_INTENTS, ModelBackend, check_rows
from server.intents import INTENT_LABELS
from server.request import RequestContext
from server.retrieval.query import expand as classifier_input
from server.schema import IntentResult

UNKNOWN = IntentResult(intent="", confidence=0.0, scores={})


async def classify(backend: ModelBackend, texts: Sequence[str], ctx: RequestContext) -> list[IntentResult]:
    """One backend call for the batch; raises the BackendError family (callers decide whether to degrade)."""
    timeout_s = ctx.budget.timeout_for("classify")
    version = ctx.model_versions.get(VERSIONED_CLASSIFIER)  # pinned by a rollout (server/rollout), else None
    pinned = {"version": version} if version else {}
    with ctx.timings.stage("classify"):
        # the classifier is trained on the message + English glosses of Japanese store words (retrieval/query.py)
        probs = await backend.classify([classifier_input(t) for t in texts], timeout_s=timeout_s, **pinned)
    check_rows("intent classifier", probs, len(texts), NUM_INTENTS)
    return [from_probs(row) for row in probs]


def from_probs(row: np.ndarray) -> IntentResult:
    best = int(np.argmax(row))
    return IntentResult(
        intent=INTENT_LABELS[best],
        confidence=float(row[best]),
        scores={label: float(p) for label, p in zip(INTENT_LABELS, row)},
    )


def from_rule(intent: str, rule: str) -> IntentResult:
    """A rule decision as a classification: confidence 1, one-hot scores."""
    return IntentResult(
        intent=intent,
        confidence=1.0,
        scores={label: 1.0 if label == intent else 0.0 for label in INTENT_LABELS},
        rule_decided=True,
        rule=rule,
    )
