"""Prometheus metrics of the traffic log and of LLM cost accounting, on the service's registry (one set per
registry, like server/hallucination/metrics.py)."""

from __future__ import annotations

import weakref
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class TrafficMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.logged = Counter("mangaassist_traffic_logged", "Turns written to the traffic log", registry=r)
        self.dropped = Counter(
            "mangaassist_traffic_dropped", "Turns not logged (queue_full|store_error|stopped|shutdown|error)", ["reason"], registry=r
        )
        self.pruned = Counter("mangaassist_traffic_pruned", "Rows deleted by retention and the row bound", registry=r)
        self.queue_depth = Gauge("mangaassist_traffic_queue_depth", "Turns waiting to be written", registry=r)
        self.retry_buffer = Gauge("mangaassist_traffic_retry_buffer",
                                  "Records a failed store write kept to write when the store answers again", registry=r)
        self.write_seconds = Histogram(
            "mangaassist_traffic_write_seconds", "One batch write to the traffic store", registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.tokens = Counter("mangaassist_llm_tokens", "LLM tokens by answering tier and direction (input|output)",
                              ["tier", "direction"], registry=r)
        self.cost = Counter("mangaassist_llm_cost_usd", "LLM cost in USD by answering tier (token prices)", ["tier"], registry=r)
        self.answers = Counter("mangaassist_llm_answers", "Answers by answering tier (the cost denominators)", ["tier"], registry=r)


_BY_REGISTRY: "weakref.WeakKeyDictionary[CollectorRegistry, dict[type, Any]]" = weakref.WeakKeyDictionary()


def cached_for(cls: type, metrics: Any = None) -> Any:
    """One ``cls(registry)`` per registry (prometheus_client refuses a metric name twice on one registry).
    ``metrics``: a ``cls``, the service's ``Metrics`` (its registry), a CollectorRegistry, or None (private)."""
    if isinstance(metrics, cls):
        return metrics
    registry = getattr(metrics, "registry", metrics)
    if registry is None:
        return cls()
    per = _BY_REGISTRY.setdefault(registry, {})
    if cls not in per:
        per[cls] = cls(registry)
    return per[cls]


def for_registry(metrics: Any = None) -> TrafficMetrics:
    return cached_for(TrafficMetrics, metrics)
