"""The service's drift job: reads the last two windows from the traffic store, probes the golden set through
the backend, and exports the alarms and the decision table's cause as gauges."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from server.drift.monitor import DriftMonitor
from server.intents import INTENT_LABELS
from server.settings import Settings
from server.traffic.store import SQLiteTrafficStore, write_all
from tests.unit.test_drift import REFERENCE, SHIFTED, UNSHIFTED, WEEK

pytestmark = pytest.mark.L0


class GoldenBackend:
    """Classifies golden messages right ``accuracy`` of the time (the first probe sets the baseline)."""

    def __init__(self, accuracies):
        self.accuracies = list(accuracies)

    async def classify(self, texts, *, timeout_s):
        acc = self.accuracies[0]
        out = np.zeros((len(texts), len(INTENT_LABELS)), dtype=np.float32)
        for i, text in enumerate(texts):
            label = text.split(":")[0]
            right = (hash(text) % 1000) / 1000 < acc
            out[i, INTENT_LABELS.index(label if right else ("chitchat" if label != "chitchat" else "escalation"))] = 1
        return out


def golden_file(tmp_path):
    import json

    path = tmp_path / "golden.jsonl"
    path.write_text("".join(json.dumps({"message": f"{INTENT_LABELS[i % 8]}: message {i}", "intent": INTENT_LABELS[i % 8]}) + "\n"
                            for i in range(200)))
    return str(path)


def value(registry, name, labels):
    return registry.get_sample_value(name, labels)


@pytest.mark.parametrize("current, accuracies, firing, cause", [
    (UNSHIFTED, [1.0], set(), "healthy"),
    (SHIFTED, [1.0], {"intent_share", "embedding", "new_patterns"}, "data_shift"),
])
async def test_a_run_exports_alarms_and_the_cause(tmp_path, current, accuracies, firing, cause):
    store = SQLiteTrafficStore()
    write_all(store, REFERENCE + list(current))  # reference: [0, WEEK), current: [WEEK, 2 WEEK)
    settings = Settings().replace(drift={"golden_path": golden_file(tmp_path)})
    registry = CollectorRegistry()
    monitor = DriftMonitor(settings, store, GoldenBackend(accuracies), registry, clock=lambda: 2 * WEEK)
    signals, decision = await monitor.run_once()
    assert set(signals.firing) >= firing and (not firing or "intent_share" in signals.firing)
    assert decision.cause == cause
    for signal in ("intent_share", "confidence", "embedding", "new_patterns"):
        assert value(registry, "mangaassist_drift_alarm", {"signal": signal}) == (1.0 if signal in signals.firing else 0.0)
    assert value(registry, "mangaassist_drift_cause", {"cause": cause}) == 1.0
    assert value(registry, "mangaassist_golden_accuracy", {"kind": "now"}) == 1.0
    assert value(registry, "mangaassist_drift_window_samples", {"window": "current"}) == len(current)


async def test_the_service_starts_its_jobs_and_a_failing_run_does_not_stop_them():
    import asyncio

    from server.traffic.cost import TritonCostMonitor
    from server.periodic import PeriodicJob
    from server.traffic.monitors import start_monitors

    class Traffic:
        store = SQLiteTrafficStore()

    class Components:
        backend = GoldenBackend([1.0])

    settings = Settings().replace(costs={"triton_metrics_url": "http://127.0.0.1:9/metrics", "interval_s": 3600})
    jobs = start_monitors(settings, Traffic(), Components(), CollectorRegistry())
    from server.drift.triggers import TriggerMonitor

    assert [type(j) for j in jobs] == [DriftMonitor, TriggerMonitor, TritonCostMonitor]
    for job in jobs:
        await job.stop()
    off = Settings().replace(drift={"enabled": False}, triggers={"enabled": False})
    assert start_monitors(off, Traffic(), Components(), CollectorRegistry()) == []

    class Flaky(PeriodicJob):
        interval_s, run_first, runs = 0.01, True, 0

        async def run_once(self):
            self.runs += 1
            raise RuntimeError("store down")

    flaky = Flaky()
    flaky.start()
    await asyncio.sleep(0.1)
    await flaky.stop()
    assert flaky.runs >= 3
