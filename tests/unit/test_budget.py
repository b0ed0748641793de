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


def test_batch_budget_follows_the_callers_deadline_not_the_chats_budgets():
    b = Budget(BudgetSettings(total_ms=300, classify_ms=50), caller_remaining_s=10.0, margin_ms=5, batch=True)
    assert 9.9 < b.timeout_for("classify") <= 9.995
    b.widen("classify", 1000)  # the caller's deadline already bounds it
    assert b.timeout_for("classify") <= 9.995


def test_batch_budget_without_a_deadline_widens_the_stage_and_the_path():
    b = Budget(BudgetSettings(total_ms=300, classify_ms=50), caller_remaining_s=None, margin_ms=5, batch=True)
    assert b.timeout_for("classify") == pytest.approx(0.05)
    b.widen("classify", 630)  # 64 texts at 10 ms per text after the first
    assert b.timeout_for("classify") == pytest.approx(0.68)
    assert 0.92 < b.remaining_s() <= 0.93
    assert b.timeout_for("embed") == pytest.approx(0.05)  # other stages keep theirs
    capped = Budget(BudgetSettings(total_ms=300), caller_remaining_s=None, margin_ms=5)
    capped.widen("classify", 630)  # a chat's budget widens too when asked, still under a caller's deadline
    assert capped.stage_ms("classify") == pytest.approx(680)
