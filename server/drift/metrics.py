"""Prometheus gauges of the drift monitor, the cost monitor and the labelling queue (one set per registry)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from server.traffic.metrics import cached_for


class DriftMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.share_shift = Gauge("mangaassist_drift_intent_share_shift_points",
                                 "Intent share, current window minus the one before, in points", ["intent"], registry=r)
        self.max_shift = Gauge("mangaassist_drift_intent_share_max_shift_points",
                               "Largest |intent share shift| over intents, in points", registry=r)
        self.confidence = Gauge("mangaassist_drift_mean_confidence",
                                "Mean classifier confidence of model-decided turns, by window", ["window"], registry=r)
        self.kl = Gauge("mangaassist_drift_embedding_kl",
                        "KL(current || reference) of the query-embedding sketch, mean over dimensions", registry=r)
        self.outliers = Gauge("mangaassist_drift_outlier_share",
                              "Share of current turns outside every reference cluster (new patterns)", registry=r)
        self.samples = Gauge("mangaassist_drift_window_samples", "Turns in each window", ["window"], registry=r)
        self.alarm = Gauge("mangaassist_drift_alarm", "1 while a drift signal is past its threshold", ["signal"], registry=r)
        self.cause = Gauge("mangaassist_drift_cause", "1 for the decision table's current cause(s)", ["cause"], registry=r)
        self.golden = Gauge("mangaassist_golden_accuracy", "Classifier accuracy on the golden probe, by kind (now|baseline)",
                            ["kind"], registry=r)
        self.last_run = Gauge("mangaassist_drift_last_run_timestamp_seconds", "When the drift job last finished", registry=r)
        # cost accounting of the Triton models (server/traffic/cost.py)
        self.triton_cost = Gauge("mangaassist_triton_cost_per_inference_usd",
                                 "Instance price x the model's share of busy time / its inferences, over the last interval",
                                 ["model"], registry=r)
        self.triton_utilisation = Gauge("mangaassist_triton_utilisation",
                                        "Busy inference-seconds per second over the instance capacity", registry=r)
        # the weekly labelling queue (server/drift/label_queue.py)
        self.label_queue_tasks = Gauge("mangaassist_label_queue_tasks", "Turns in the last labelling-queue export",
                                       registry=r)
        self.label_queue_last = Gauge("mangaassist_label_queue_last_export_timestamp_seconds",
                                      "When the labelling queue was last exported", registry=r)


def for_registry(metrics: Any = None) -> DriftMetrics:
    return cached_for(DriftMetrics, metrics)
