"""Model cards and decision records are rendered from the registry (model_repository/lifecycle/cards.py): lineage,
gate checks, who approved a promotion and why, known limits (a gate check passed with little to spare) and the
reversal triggers that would undo the version. A real MLflow registry in a temp dir."""

from __future__ import annotations

import hashlib

import pytest

from model_repository.lifecycle import cards
from model_repository.lifecycle.registry import CHAMPION, Registry

pytestmark = pytest.mark.L0

MODEL = "intent_classifier_onnx"


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    reg = Registry(tmp_path_factory.mktemp("life"))
    for v in ("1", "2"):
        digest = hashlib.sha256(f"file {v}".encode()).hexdigest()
        reg.log_version(MODEL, v, params={"epochs": 3, "lr": 5e-5}, metrics={"accuracy": 0.9 + int(v) / 100},
                        lineage={"onnx_sha256": digest, "data_hash": f"data{v}", "code_hash": f"code{v}",
                                 "parent": "" if v == "1" else "1", "git_commit": "abc123"})
    reg.set_alias(MODEL, CHAMPION, "1")
    checks = [{"name": "accuracy_drop", "op": "<=", "threshold": 0.02, "measured": 0.019, "status": "pass"},
              {"name": "p99_ratio", "op": "<=", "threshold": 1.2, "measured": 0.9, "status": "pass"}]
    reg.record_gate(MODEL, "2", passed=True, checks=checks, baseline="1",
                    sha256=hashlib.sha256(b"file 2").hexdigest())
    reg.promote(MODEL, "2", approved_by="dana@store", reason="fixes slang on order_status")
    return reg


def test_the_card_states_lineage_gate_approval_limits_and_triggers(registry):
    text = cards.card(registry, MODEL, "2")
    assert "| data_hash | `data2` |" in text and "| parent | `1` |" in text
    assert "**PASS** against version 1" in text and "the registered file" in text and "NOT the registered" not in text
    assert "| accuracy_drop | 0.019 | <= 0.02 | pass |" in text
    assert "approved by **dana@store** (fixes slang on order_status); it replaced version 1" in text
    assert "`accuracy_drop` passed with little to spare" in text and "p99_ratio` passed with little" not in text
    assert "**misclassified_escalation**" in text and "roll the classifier back" in text


def test_a_version_without_gate_or_promotion_says_so(registry):
    text = cards.card(registry, MODEL, "1")
    assert "No gate record: this version may not answer customers." in text
    assert "not promoted; no rollout noted" in text


def test_a_promotion_without_an_approver_is_visible_on_the_card(tmp_path):
    reg = Registry(tmp_path / "life")
    digest = hashlib.sha256(b"x").hexdigest()
    reg.log_version(MODEL, "1", params={}, metrics={}, lineage={"onnx_sha256": digest})
    reg.record_gate(MODEL, "1", passed=True, checks=[], baseline="0", sha256=digest)
    reg.promote(MODEL, "1")
    assert "approval not recorded" in cards.card(reg, MODEL, "1")
    paths = cards.write_cards(reg, MODEL, tmp_path / "cards")
    assert [p.name for p in paths] == [f"{MODEL}-v1.md"]
