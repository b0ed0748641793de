"""L0 smoke of benchmarks/answers/openworld_cost.py (issue 23's "chat p99 grows <= 5 ms" bound): it runs on a
catalog, times both stages on the frozen open-world messages and follow-ups, and writes its report with the
machine's quietness -- no timing asserted."""

from __future__ import annotations

import json

import pytest

from benchmarks.answers import openworld_cost

pytestmark = pytest.mark.L0


def test_the_cost_benchmark_times_both_stages_and_records_quietness(store, tmp_path):
    build = tmp_path / "build"
    (build / "index").mkdir(parents=True)
    (build / "index" / "catalog.sqlite").symlink_to(store.db_path)
    out = tmp_path / "out"
    assert openworld_cost.main(["--build", str(build), "--rounds", "1", "--limit", "12", "--out", str(out)]) == 0
    result = json.loads((out / "openworld_cost.json").read_text())
    assert result["messages"] == 12 and result["follow_ups"] == 12
    assert result["resolve"]["n"] == 12 and result["followup"]["n"] == 12
    assert result["added_p99_bound_ms"] == pytest.approx(result["resolve"]["p99_ms"] + result["followup"]["p99_ms"], abs=1e-3)
    assert "quiet" in result["quietness"] and "budget 5 ms" in (out / "openworld_cost.md").read_text()
