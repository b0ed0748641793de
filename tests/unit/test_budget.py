from __future__ import annotations

import time

import pytest

from server.budget import Budget
from server.errors import BudgetExceeded
from server.settings import BudgetSettings

pytestmark = pytest.mark.L0


def test_deadline_is_min_of_caller_and_total():
    b = Budget(BudgetSettings(total_ms=300), caller_remaining_s=10.0, margin_ms=5)
    assert 0.29 < b.remaining_s() <= 0.3
    b = Budget(BudgetSettings(total_ms=300), caller_remaining_s=0.1, margin_ms=5)
    assert b.remaining_s() <= 0.1
    b = Budget(BudgetSettings(total_ms=300), caller_remaining_s=None, margin_ms=5)
    assert 0.29 < b.remaining_s() <= 0.3


def test_stage_timeout_is_min_of_stage_budget_and_remaining_minus_margin():
    b = Budget(BudgetSettings(total_ms=300, classify_ms=50), caller_remaining_s=None, margin_ms=5)
    assert b.timeout_for("classify") == pytest.approx(0.05)
    b = Budget(BudgetSettings(total_ms=300, classify_ms=500), caller_remaining_s=0.1, margin_ms=5)
    assert 0.08 < b.timeout_for("classify") <= 0.095


def test_spent_budget_raises():
    b = Budget(BudgetSettings(total_ms=10), caller_remaining_s=None, margin_ms=5)
    time.sleep(0.012)
    assert b.spent()
    with pytest.raises(BudgetExceeded):
        b.timeout_for("embed")


def test_answer_timeout_uses_the_callers_deadline_not_the_path_budget():
    b = Budget(BudgetSettings(total_ms=10, answer_ms=2000), caller_remaining_s=1.0, margin_ms=5)
    time.sleep(0.012)
    assert b.spent()
    assert 0.9 < b.answer_timeout() <= 1.0
    with pytest.raises(BudgetExceeded):
        Budget(BudgetSettings(), caller_remaining_s=0.0, margin_ms=5).answer_timeout()
