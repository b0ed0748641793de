"""The fixed intent taxonomy, from the model contract (model_repository/contract.py). Order is
the classifier's output order; never reorder."""

from __future__ import annotations

from model_repository.contract import INTENT_LABELS, LABEL_TO_ID

__all__ = ["INTENT_LABELS", "LABEL_TO_ID"]
