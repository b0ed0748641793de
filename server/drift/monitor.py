"""The drift job in the service: every ``drift.interval_s`` it reads the last two windows of the traffic log,
computes the signals (server/drift/signals.py), probes the classifier on the golden set through the live
backend, applies the decision table and exports everything as gauges (the chart's PrometheusRule alerts on
``mangaassist_drift_alarm``). All store reads and numpy work run in a worker thread."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from server.drift.decision import ACTIONS, Decision, GoldenProbe, decide
from server.drift.metrics import DriftMetrics, for_registry
from server.drift.signals import DriftSignals, compute
from server.intents import INTENT_LABELS
from server.periodic import PeriodicJob

log = logging.getLogger(__name__)


def load_golden(path: str, size: int) -> list[tuple[str, str]]:
    """(message, intent) pairs, an even spread of ``size`` of them (deterministic)."""
    p = Path(path)
    if not path or not p.is_file():
        return []
    rows = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    rows = [(r["message"], r["intent"]) for r in rows if r.get("message") and r.get("intent") in INTENT_LABELS]
    step = max(1, len(rows) // max(1, size))
    return rows[::step][:size]


async def golden_accuracy(backend: Any, golden: Sequence[tuple[str, str]], batch: int = 32, timeout_s: float = 10.0) -> float | None:
    if not golden:
        return None
    right = 0
    for i in range(0, len(golden), batch):
        chunk = golden[i : i + batch]
        probs = np.asarray(await backend.classify([m for m, _ in chunk], timeout_s=timeout_s))
        right += sum(INTENT_LABELS[int(np.argmax(row))] == label for row, (_, label) in zip(probs, chunk))
    return right / len(golden)


def export(metrics: DriftMetrics, signals: DriftSignals, decision: Decision, golden: GoldenProbe | None) -> None:
    for intent, points in signals.intent_shift_points.items():
        metrics.share_shift.labels(intent).set(points)
    metrics.max_shift.set(abs(signals.max_shift_points))
    for window, value in (("reference", signals.confidence_reference), ("current", signals.confidence_current)):
        if value is not None:
            metrics.confidence.labels(window).set(value)
    metrics.samples.labels("reference").set(signals.n_reference)
    metrics.samples.labels("current").set(signals.n_current)
    if signals.embedding_kl is not None:
        metrics.kl.set(signals.embedding_kl)
    if signals.outlier_share is not None:
        metrics.outliers.set(signals.outlier_share)
    for name, on in signals.alarms.items():
        metrics.alarm.labels(name).set(1 if on else 0)
    for cause in ACTIONS:
        metrics.cause.labels(cause).set(1 if cause in decision.causes else 0)
    if golden is not None:
        metrics.golden.labels("now").set(golden.accuracy)
        metrics.golden.labels("baseline").set(golden.baseline)
    metrics.last_run.set(time.time())


class DriftMonitor(PeriodicJob):
    def __init__(self, settings: Any, store: Any, backend: Any, metrics: Any, *, clock: Callable[[], float] = time.time,
                 max_samples: int = 20_000) -> None:
        d = settings.drift
        self.store, self.backend = store, backend
        self.config = d  # the thresholds: settings.drift, their one home
        self.metrics = for_registry(metrics)
        self.interval_s, self.window_s, self.max_samples = d.interval_s, d.window_s, max_samples
        self.golden = load_golden(d.golden_path, d.golden_probe_size)
        self.golden_baseline: float | None = None
        self.clock = clock
        self.last: tuple[DriftSignals, Decision] | None = None

    async def run_once(self) -> tuple[DriftSignals, Decision]:
        now = self.clock()
        golden = await self._probe()
        signals, decision = await asyncio.to_thread(self._compute, now, golden)
        export(self.metrics, signals, decision, golden)
        self.last = (signals, decision)
        if signals.firing:
            log.warning("drift: %s -> %s (%s)", ", ".join(signals.firing), decision.cause, "; ".join(decision.evidence))
        return signals, decision

    def _compute(self, now: float, golden: GoldenProbe | None) -> tuple[DriftSignals, Decision]:
        w = self.window_s
        # bounded uniform samples: a week at full traffic is far more rows than the signals need, and parsing them
        # all in a thread would hold the GIL the event loop serves chats with
        reference = self.store.records(now - 2 * w, now - w, limit=self.max_samples, sample=True)
        current = self.store.records(now - w, now, limit=self.max_samples, sample=True)
        signals = compute(reference, current, self.config)
        return signals, decide(signals, golden, self.config)

    async def _probe(self) -> GoldenProbe | None:
        if not self.golden or self.backend is None:
            return None
        try:
            accuracy = await golden_accuracy(self.backend, self.golden)
        except Exception as err:  # noqa: BLE001 -- no probe this run: the decision says so
            log.info("golden probe failed: %r", err)
            return None
        if accuracy is None:
            return None
        if self.golden_baseline is None:
            self.golden_baseline = accuracy  # the served version's accuracy when this process started
        return GoldenProbe(accuracy, self.golden_baseline)
