"""The fixed intent taxonomy (DESIGN.md). Order is the classifier's output order; never reorder."""

from __future__ import annotations

INTENT_LABELS: tuple[str, ...] = (
    "product_question",
    "recommendation",
    "order_status",
    "return_refund",
    "policy_faq",
    "price_deal",
    "chitchat",
    "escalation",
)
LABEL_TO_ID: dict[str, int] = {label: i for i, label in enumerate(INTENT_LABELS)}
