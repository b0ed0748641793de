"""benchmarks/common.py's quietness recorder: every benchmark result says whether the shared cores were quiet."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks import common

STAT = "cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 50 0 25 400 5 0 0 20 0 0\nintr 1 2 3\n"


def _probe(load: float, user: int, idle: int, steal: int, own: int, t: float = 0.0) -> dict:
    return {"t": t, "load": [load, load, load], "own_ticks": own,
            "cpu": {**dict.fromkeys(common._CPU_FIELDS, 0), "user": user, "idle": idle, "steal": steal}}


def test_cpu_times_reads_the_aggregate_line():
    assert common.cpu_times(STAT) == {"user": 100, "nice": 0, "system": 50, "idle": 800, "iowait": 10, "irq": 0,
                                      "softirq": 0, "steal": 40}
    assert set(common.cpu_times()) == set(common._CPU_FIELDS)  # this machine's /proc/stat


def test_judge_quietness_names_each_reason():
    # 200 ticks on 2 cores: the benchmark's own 100 busy, nobody else, no steal, an idle machine before
    quiet = common.judge_quietness(_probe(0.1, 0, 0, 0, 0), _probe(0.9, 100, 100, 0, 100, t=1.0), cores=2)
    assert quiet["quiet"] and quiet["reasons"] == [] and quiet["steal_pct"] == 0 and quiet["foreign_cpu_pct"] == 0
    assert quiet["load_before"] == [0.1] * 3 and quiet["load_after"] == [0.9] * 3
    loaded = common.judge_quietness(_probe(3.0, 0, 0, 0, 0), _probe(3.0, 100, 100, 0, 100), cores=2)
    assert not loaded["quiet"] and loaded["reasons"] == ["load average 3.0 before the round on 2 cores (> 0.5)"]
    stolen = common.judge_quietness(_probe(0.1, 0, 0, 0, 0), _probe(0.1, 100, 80, 20, 100), cores=2)
    assert not stolen["quiet"] and stolen["steal_pct"] == 10.0 and "CPU steal 10.0%" in stolen["reasons"][0]
    shared = common.judge_quietness(_probe(0.1, 0, 0, 0, 0), _probe(0.1, 180, 20, 0, 100), cores=2)
    assert not shared["quiet"] and shared["foreign_cpu_pct"] == 40.0 and "other processes" in shared["reasons"][0]


def test_own_cpu_ticks_counts_the_children_this_benchmark_started():
    before = common.own_cpu_ticks()
    spin = "import time\nwhile time.process_time() < 0.3: pass\nimport sys; sys.stdout.write('x'); sys.stdout.flush()\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", spin], stdout=subprocess.PIPE)
    try:
        assert child.stdout.read(1) == b"x"  # the child has used 0.3 s of CPU and is still alive
        assert common.own_cpu_ticks() - before >= 20  # 30 ticks at 100 Hz, whatever the wall time was
    finally:
        child.kill()
        child.wait()


def test_a_loud_round_is_warned_about_and_marked_in_the_result(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(common, "_ROUNDS", [])
    readings = iter([_probe(0.1, 0, 0, 0, 0), _probe(0.1, 100, 100, 0, 100),   # round 1: quiet
                     _probe(0.1, 100, 100, 0, 100), _probe(0.1, 300, 120, 0, 200)])  # round 2: others took 40%
    monkeypatch.setattr(common, "machine_probe", lambda: next(readings))
    monkeypatch.setattr(common, "_usable_cores", lambda: 2)
    with common.quiet_round("c=1") as first:
        pass
    with common.quiet_round("c=8") as second:
        pass
    assert first.quiet and not second.quiet
    assert "WARNING: round 'c=8' was NOT measured on a quiet machine" in capsys.readouterr().err
    common.write_json(tmp_path / "r.json", {"figure": 1.0})
    written = json.loads((tmp_path / "r.json").read_text())
    assert written["figure"] == 1.0 and written["quietness"]["quiet"] is False
    assert [r["quiet"] for r in written["quietness"]["rounds"]] == [True, False]
    assert "WARNING" in capsys.readouterr().err
    assert "NOT QUIET" in common.with_quietness("# Title\nbody\n", written["quietness"]).splitlines()[2]


def test_a_run_without_rounds_is_judged_as_one(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "_ROUNDS", [])
    monkeypatch.setattr(common, "_RUN_START", _probe(0.1, 0, 0, 0, 0))
    monkeypatch.setattr(common, "machine_probe", lambda: _probe(0.1, 100, 100, 0, 100, t=2.0))
    common.write_json(tmp_path / "r.json", {"figure": 1.0})
    report = json.loads((tmp_path / "r.json").read_text())["quietness"]
    assert report["quiet"] is True and [r["round"] for r in report["rounds"]] == ["whole run"]
    assert report["rounds"][0]["seconds"] == pytest.approx(2.0)
