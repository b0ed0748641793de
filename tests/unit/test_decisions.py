"""Decision reports compute their compound metrics from the result files (benchmarks/decisions.py)."""

from __future__ import annotations

import json

import pytest

from benchmarks import decisions

pytestmark = pytest.mark.L0


def summary(q: float, p99_ms: float, records: int = 10, answer_ms: float = 0.0) -> dict:
    return {"records": records, "factual": {"rate": q}, "relevance": {"rate": q}, "completeness": {"complete_rate": q},
            "helpfulness": {"auto_rate": q}, "fluency": {"rouge_l_f1": q}, "safety": {"rate": q}, "format": {"rate": q},
            "latency": {"per_tier": {"t": {"client_ms": {"p99": p99_ms}, "answer_ms": {"p50": answer_ms}},
                                     "u": {"client_ms": {"p99": p99_ms / 2}}}}}


def records(n: int, right: int, escalated_wrongly: int = 0) -> list[dict]:
    out = [{"factual": i < right, "relevance": True, "intent": "order_status", "answered_intent": "order_status",
            "message": f"m{i}"} for i in range(n)]
    for r in out[:escalated_wrongly]:
        r["answered_intent"] = "escalation"
    return out


def write(path, q, p99_ms, right, n=10, answer_ms=0.0):
    path.write_text(json.dumps({"summary": summary(q, p99_ms, n, answer_ms), "records": records(n, right)}))
    return path


def test_quality_adjusted_latency_is_on_the_1_to_5_scale_and_picks_the_best_trade(tmp_path):
    fast = write(tmp_path / "fast.json", 0.80, 100, 8)
    slow = write(tmp_path / "slow.json", 0.95, 1000, 9)
    out = decisions.tier_options({"fast": fast, "slow": slow}, usd_per_hour=1.0, cores=2, requests_per_month=1e6)
    assert out["options"]["fast"]["qal"] == pytest.approx((1 + 4 * 0.80) * 20 - 0.1 * 10)  # 83.0
    assert out["options"]["slow"]["qal"] == pytest.approx((1 + 4 * 0.95) * 20 - 1.0 * 10)  # 86.0 -- the worst p99 counts
    # on the 1-5 scale latency weighs what the definition says: 0.9 s of p99 is worth 0.45 of a quality point (0-1:
    # 0.9 s outweighed 0.15 of quality, and "fast" won)
    assert out["pick"] == "slow" and "fast" in out["reversal_trigger"]


def test_the_tier_decision_is_costed_per_composite_quality_point(tmp_path):
    template = write(tmp_path / "t.json", 0.9, 100, 9)
    small = write(tmp_path / "s.json", 0.9, 100, 10)  # accuracy 1.0 vs 0.9: +4 composite points (0.4 weight)
    small_data = json.loads(small.read_text())
    small_data["summary"]["latency"]["per_tier"]["small"] = {"client_ms": {"p99": 100}, "answer_ms": {"p50": 3600_000}}
    small.write_text(json.dumps(small_data))
    out = decisions.tier_options({"template": template, "small": small}, usd_per_hour=2.0, cores=2,
                                 requests_per_month=100)
    t, s = out["options"]["template"], out["options"]["small"]
    assert t["composite"] == pytest.approx(0.4 * 0.9 + 0.3 * 0.9 + 0.2 * 0.9 + 0.1 * 0.9)
    assert s["composite"] - t["composite"] == pytest.approx(0.04)
    assert s["usd_per_answer"] == pytest.approx(1.0)  # an hour of one of two cores at $2/h
    cost = out["cost_per_composite_point"]
    assert cost["composite_points"] == pytest.approx(4.0) and cost["usd_per_composite_point"] == pytest.approx(25.0)


def test_escalations_caused_by_misclassification_are_counted_and_priced(tmp_path):
    path = tmp_path / "eval.json"
    rows = records(200, 200, escalated_wrongly=2)
    rows.append({"factual": True, "relevance": True, "intent": "escalation", "answered_intent": "chitchat", "message": "x"})
    path.write_text(json.dumps({"records": rows}))
    out = decisions.misclassified_escalations(path, requests_per_month=1e6, usd_per_escalation=5.0)
    assert (out["caused"], out["missed"]) == (2, 1)
    assert out["usd_per_month"] == pytest.approx(2 / 201 * 1e6 * 5.0, rel=1e-3)
