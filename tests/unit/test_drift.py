"""Drift signals, alarms and the "model problem or data problem" decision on scripted weeks of traffic:
an unshifted week stays quiet; a week where return requests double and a new slang appears fires; the decision
table names the right cause for each scenario; the report regenerates from the traffic log with one command."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from model_repository.lifecycle.drift import main as drift_cli
from server.drift.decision import GoldenProbe, decide
from server.drift.signals import compute, kl_divergence
from server.settings import DriftSettings
from server.intents import INTENT_LABELS
from server.traffic.record import TrafficRecord
from server.traffic.store import SQLiteTrafficStore, write_all

pytestmark = pytest.mark.L0

WEEK = 7 * 86400.0
BASE = {"product_question": 0.22, "recommendation": 0.14, "order_status": 0.16, "return_refund": 0.08,
        "policy_faq": 0.10, "price_deal": 0.12, "chitchat": 0.12, "escalation": 0.06}
RULE_SHARE = {"chitchat": 0.7, "escalation": 0.5, "order_status": 0.5}
_space = np.random.default_rng(7)
CENTRES = {i: _space.normal(0, 1, 16) for i in [*INTENT_LABELS, "slang"]}


def week(seed: int, start: float, *, returns_x: float = 1.0, slang: float = 0.0, confidence: float = 0.93,
         n: int = 1000, slang_cluster: bool = True) -> list[TrafficRecord]:
    """A week of turns: intents at BASE shares (return_refund x ``returns_x``), ``slang`` of them in a new
    phrasing the model has not seen (its own embedding cluster -- or, ``slang_cluster=False``, embedded among its
    intent's turns, as MiniLM embedded the real run's slang -- and low confidence)."""
    rng = np.random.default_rng(seed)
    shares = dict(BASE, return_refund=BASE["return_refund"] * returns_x)
    labels = list(shares)
    p = np.array([shares[k] for k in labels]) / sum(shares.values())
    out = []
    for k in range(n):
        intent = labels[rng.choice(len(labels), p=p)]
        is_slang = rng.random() < slang
        rule = not is_slang and rng.random() < RULE_SHARE.get(intent, 0.0)
        centre = CENTRES["slang" if is_slang and slang_cluster else intent]
        conf = 1.0 if rule else float(rng.beta(4, 3) if is_slang else min(0.999, rng.beta(40, 40 * (1 - confidence) / confidence)))
        words = ["yo", "this", "drop", "bussin", "no", "cap", "fr"] if is_slang else [intent, "question", "about", "manga"]
        out.append(TrafficRecord(
            ts=start + k * WEEK / n, request_id=f"{seed}-{k}", intent=intent, confidence=conf, rule_decided=rule,
            tier="template", message=" ".join(rng.permutation(words)) + f" #{k}",
            sketch=tuple(np.round(centre + rng.normal(0, 0.35, 16), 4)),
        ))
    return out


REFERENCE = week(1, 0.0)
UNSHIFTED = week(2, WEEK)
SHIFTED = week(3, WEEK, returns_x=2.0, slang=0.12)
CFG = DriftSettings()


def test_an_unshifted_week_stays_quiet():
    s = compute(REFERENCE, UNSHIFTED, CFG)
    assert s.firing == [], s
    assert abs(s.max_shift_points) < 2.5 and s.embedding_kl < CFG.kl_threshold / 3
    assert s.confidence_current > 0.9 and s.outlier_share < 0.08


def test_returns_doubling_and_a_new_slang_fire_the_alarms():
    s = compute(REFERENCE, SHIFTED, CFG)
    assert {"intent_share", "embedding", "new_patterns"} <= set(s.firing)
    assert s.max_shift_intent == "return_refund" and s.max_shift_points > 5
    assert s.confidence_current < s.confidence_reference - 0.03
    (top, *_) = s.new_patterns
    assert {"bussin", "cap"} <= set(top.new_terms)  # the labeller sees what is new
    assert all("bussin" in m for m in top.examples)


def test_new_vocabulary_is_a_new_pattern_even_where_the_embeddings_do_not_separate_it():
    s = compute(REFERENCE, week(9, WEEK, slang=0.12, slang_cluster=False), CFG)
    assert s.alarms["new_patterns"] and s.outlier_share < CFG.outlier_share  # the embedding view alone misses it
    assert s.new_term_share > CFG.new_term_share and "bussin" in s.new_patterns[0].new_terms


def test_small_windows_do_not_raise_embedding_alarms_on_sampling_noise():
    """250-turn windows from one distribution: the KL passes its effect-size floor by chance now and then; the
    G-test keeps the alarm quiet."""
    results = [compute(week(100 + i, 0.0, n=250), week(200 + i, WEEK, n=250), CFG) for i in range(10)]
    assert sum(r.embedding_kl > CFG.kl_threshold for r in results) >= 1  # the floor alone would have fired
    assert not any(r.alarms["embedding"] for r in results)


def test_a_classifier_outage_is_not_reported_as_drift():
    """Triton down for the week: only the rule path decides, so its intents take every share."""
    outage = [dataclasses.replace(r, intent="", confidence=0.0, degraded=("classifier_unavailable",))
              if not r.rule_decided else r for r in UNSHIFTED]
    s = compute(REFERENCE, outage, CFG)
    assert abs(s.max_shift_points) > 20  # what the alarm would have reported as drift
    assert not s.alarms["intent_share"] and any("outage" in n for n in s.notes)


def test_the_confidence_alarm_fires_below_its_floor_only():
    assert compute(REFERENCE, week(4, WEEK, confidence=0.80), CFG).alarms["confidence"]
    assert not compute(REFERENCE, week(4, WEEK, confidence=0.90), CFG).alarms["confidence"]


def test_kl_is_zero_for_the_same_sample_and_grows_with_a_shift():
    x = np.random.default_rng(0).normal(size=(2000, 4))
    assert kl_divergence(x, x)[0] == pytest.approx(0.0, abs=1e-9)
    assert kl_divergence(x, x + 0.5)[0] > kl_divergence(x, x + 0.1)[0] > 0.0


@pytest.mark.parametrize("current, golden, cause, causes", [
    (UNSHIFTED, GoldenProbe(0.94, 0.94), "healthy", ("healthy",)),
    (SHIFTED, GoldenProbe(0.94, 0.94), "data_shift", ("data_shift", "new_data_needed")),
    (SHIFTED, GoldenProbe(0.88, 0.94), "model_problem", ("model_problem", "new_data_needed")),
    (UNSHIFTED, GoldenProbe(0.90, 0.94), "model_problem", ("model_problem",)),
    (week(5, WEEK, returns_x=2.0), GoldenProbe(0.94, 0.94), "traffic_mix", ("traffic_mix",)),
    (week(6, WEEK, confidence=0.80), None, "unexplained_confidence_drop", ("unexplained_confidence_drop",)),
    (UNSHIFTED[:50], GoldenProbe(0.94, 0.94), "insufficient_data", ("insufficient_data",)),
])
def test_the_decision_table_names_the_cause(current, golden, cause, causes):
    decision = decide(compute(REFERENCE, current, CFG), golden, CFG)
    assert (decision.cause, decision.causes) == (cause, causes)
    assert decision.action


def test_the_report_regenerates_from_the_traffic_log_with_one_command(tmp_path, capsys):
    db = tmp_path / "traffic.db"
    store = SQLiteTrafficStore(str(db))
    write_all(store, REFERENCE + week(3, WEEK, returns_x=2.0, slang=0.12))
    store.close()
    code = drift_cli(["report", "--sqlite", str(db), "--window", "7d", "--out", str(tmp_path / "out"),
                      "--golden-accuracy", "0.94", "--golden-baseline", "0.94", "--fail-on-alarm"])
    printed = json.loads(capsys.readouterr().out)
    assert code == 1 and printed["cause"] == "data_shift" and "new_patterns" in printed["firing"]
    data = json.loads((tmp_path / "out" / "drift.json").read_text())
    assert data["decision"]["causes"] == ["data_shift", "new_data_needed"]
    assert (tmp_path / "out" / "drift.png").stat().st_size > 10_000
    assert "return_refund" in (tmp_path / "out" / "drift.md").read_text()
