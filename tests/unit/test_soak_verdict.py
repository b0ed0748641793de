"""The soak's pass/fail rule (benchmarks/soak/run.py): RSS growth < 5%, fds/threads flat (+-2), p99 drift < 10%,
judged on the median of a baseline fifth (after a warm-up fifth) against the median of the last fifth."""

from __future__ import annotations

import pytest

from benchmarks.soak.run import proc_usage, verdict

pytestmark = pytest.mark.L0


def _windows(n=20, rss=lambda i: 100e6, fds=lambda i: 15, p99=lambda i: 120.0):
    return [{"service_rss": rss(i), "triton_rss": 1e9, "service_fds": fds(i), "service_threads": 16,
             "triton_fds": 114, "triton_threads": 436, "p99_ms": p99(i)} for i in range(n)]


def test_flat_run_passes_and_warm_up_growth_is_not_counted():
    result = verdict(_windows(rss=lambda i: 60e6 if i < 4 else 100e6))  # grew only during the warm-up fifth
    assert result["pass"], result


@pytest.mark.parametrize("case, failing", [
    (dict(rss=lambda i: 100e6 * (1 + 0.01 * i)), "service_rss"),  # ~+13% from baseline to end: a leak
    (dict(fds=lambda i: 15 + i), "service_fds"),                   # one fd more per window
    (dict(p99=lambda i: 120.0 * (1.15 if i >= 16 else 1.0)), "p99_ms"),
])
def test_growth_leaks_and_drift_fail(case, failing):
    result = verdict(_windows(**case))
    assert not result["pass"] and not result["checks"][failing]["pass"], result["checks"][failing]


def test_too_short_to_judge_fails():
    assert verdict(_windows(n=2)) == {"pass": False, "why": "only 2 windows: too short to judge"}


def test_proc_usage_reads_this_process():
    import os

    usage = proc_usage(os.getpid())
    assert usage and usage["rss"] > 10e6 and usage["fds"] >= 3 and usage["threads"] >= 1
