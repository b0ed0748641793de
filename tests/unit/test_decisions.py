"""Decision reports compute their compound metrics from the result files (benchmarks/decisions.py)."""

from __future__ import annotations

import json

import pytest

from benchmarks import decisions

pytestmark = pytest.mark.L0


def summary(q: float, p99_ms: float, records: int = 10) -> dict:
    return {"records": records, "factual": {"rate": q}, "relevance": {"rate": q}, "completeness": {"complete_rate": q},
            "helpfulness": {"auto_rate": q}, "fluency": {"rouge_l_f1": q}, "safety": {"rate": q}, "format": {"rate": q},
            "latency": {"per_tier": {"t": {"client_ms": {"p99": p99_ms}}, "u": {"client_ms": {"p99": p99_ms / 2}}}}}


def test_quality_adjusted_latency_picks_the_best_trade(tmp_path):
    fast, slow = tmp_path / "fast.json", tmp_path / "slow.json"
    fast.write_text(json.dumps({"summary": summary(0.80, 100)}))
    slow.write_text(json.dumps({"summary": summary(0.95, 1000)}))
    out = decisions.tier_options({"fast": fast, "slow": slow})
    assert out["options"]["fast"]["qal"] == pytest.approx(0.80 * 20 - 0.1 * 10)  # 15.0
    assert out["options"]["slow"]["qal"] == pytest.approx(0.95 * 20 - 1.0 * 10)  # 9.0 -- the worst tier's p99 counts
    assert out["pick"] == "fast" and "slow" in out["reversal_trigger"]
