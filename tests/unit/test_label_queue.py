"""L0: the service's weekly labelling queue over a real (SQLite) traffic log: each export holds the thumbs-down and
low-confidence turns since the previous one, as Label Studio tasks; a restart carries on from the last file."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from server.drift.label_queue import LabelQueueJob
from server.settings import Settings
from server.traffic.monitors import start_monitors
from server.traffic.record import TrafficRecord
from server.traffic.store import SQLiteTrafficStore

pytestmark = pytest.mark.L0

WEEK = 7 * 86400.0
T0 = 1_790_000_000.0


def turn(i: int, ts: float, confidence: float, feedback: str = "") -> TrafficRecord:
    return TrafficRecord(ts=ts, request_id=f"r{i}", intent="recommendation", confidence=confidence,
                         message=f"message {i}", feedback=feedback, model_versions={"intent_classifier": "1"})


def settings(tmp_path) -> Settings:
    return Settings().replace(drift={"label_queue_dir": str(tmp_path / "queue")}, rollout={"feedback_db": ""})


def test_each_week_exports_only_its_own_doubtful_turns(tmp_path):
    store = SQLiteTrafficStore(str(tmp_path / "traffic.db"))
    store.write([turn(0, T0 - 10, 0.40), turn(1, T0 + 10, 0.95), turn(2, T0 + 20, 0.50),
                 turn(3, T0 + 30, 0.99, "thumbs_down"), turn(4, T0 + WEEK + 5, 0.30), turn(5, T0 + WEEK + 100, 0.20)])
    now = [T0 + WEEK]
    registry = CollectorRegistry()
    job = LabelQueueJob(settings(tmp_path), store, registry, clock=lambda: now[0])
    first = job.export()
    tasks = json.loads(first.read_text())
    assert [t["data"]["request_id"] for t in tasks] == ["r3", "r2"]  # thumbs-down first; r0 before the week, r1 sure
    assert tasks[0]["predictions"][0]["result"][0]["value"]["choices"] == ["recommendation"]
    assert registry.get_sample_value("mangaassist_label_queue_tasks") == 2

    now[0] += WEEK + 3600  # a late run (the pod was busy or restarting): the window starts where the last one ended
    second = json.loads(job.export().read_text())
    assert sorted(t["data"]["request_id"] for t in second) == ["r4", "r5"]  # nothing twice, nothing missed

    restarted = LabelQueueJob(settings(tmp_path), store, CollectorRegistry(), clock=lambda: now[0] + 60)
    assert restarted.since == pytest.approx(now[0], abs=1)  # carries on from the newest file on disk
    assert restarted.export() is None  # nothing new: no file, gauge 0


async def test_the_service_runs_the_queue_only_when_it_has_a_directory(tmp_path):
    store = SQLiteTrafficStore(str(tmp_path / "traffic.db"))
    traffic = SimpleNamespace(store=store)
    components = SimpleNamespace(backend=None)
    for directory, expected in (("", False), (str(tmp_path / "queue"), True)):
        s = Settings().replace(drift={"enabled": False, "label_queue_dir": directory}, triggers={"enabled": False})
        jobs = start_monitors(s, traffic, components, CollectorRegistry())
        assert any(isinstance(j, LabelQueueJob) for j in jobs) is expected
        for job in jobs:
            await job.stop()
