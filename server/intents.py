"""The fixed intent taxonomy (DESIGN.md), from the model contract (model_repository/contract.py). Order is
the classifier's output order; never reorder."""

from __future__ import annotations

from model_repository.contract import INTENT_LABELS

LABEL_TO_ID: dict[str, int] = {label: i for i, label in enumerate(INTENT_LABELS)}

__all__ = ["INTENT_LABELS", "LABEL_TO_ID"]
