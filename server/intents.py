"""The fixed intent taxonomy, from the model contract (contracts/models.py). Order is
the classifier's output order; never reorder."""

from __future__ import annotations

from contracts.models import INTENT_LABELS, LABEL_TO_ID

__all__ = ["INTENT_LABELS", "LABEL_TO_ID"]
