"""Prometheus metrics of the async hallucination scorer, registered on the service's registry
(``server.metrics.Metrics.registry``) so they are served on the same /metrics endpoint.

One :class:`HallucinationMetrics` per registry (:func:`for_registry` caches it), so building the queue
twice against the same registry does not trip prometheus_client's duplicate-name check.
"""

from __future__ import annotations

import weakref
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_SCORE_BUCKETS = (0.01, 0.03, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HallucinationMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.dropped = Counter(
            "mangaassist_hallucination_dropped", "Answers not scored: queue full or shutting down", ["reason"], registry=r
        )
        self.alerts = Counter("mangaassist_hallucination_alerts", "Answers scoring >= the alert threshold (0.5)", registry=r)
        self.blocks = Counter(
            "mangaassist_hallucination_blocks", "Answers scoring >= the block threshold (guardrails.hallucination_block, off by default); their session is blocked", registry=r
        )
        self.jobs = Counter(
            "mangaassist_hallucination_jobs", "Scoring jobs finished, by outcome (scored|no_claims|error|timeout)", ["outcome"], registry=r
        )
        self.score = Histogram(
            "mangaassist_hallucination_score", "Answer hallucination score (0 grounded .. 1 fabricated)", registry=r, buckets=_SCORE_BUCKETS
        )
        self.seconds = Histogram(
            "mangaassist_hallucination_scoring_seconds", "Time to score one answer", registry=r, buckets=_SECONDS_BUCKETS
        )
        self.queue_depth = Gauge("mangaassist_hallucination_queue_depth", "Answers waiting to be scored", registry=r)
        self.daily_avg = Gauge("mangaassist_hallucination_daily_avg_score", "Mean answer score so far today (UTC)", registry=r)
        self.daily_avg_alert = Gauge(
            "mangaassist_hallucination_daily_avg_alert", "1 when today's mean score is above the daily threshold (0.03)", registry=r
        )
        self.blocked_sessions = Gauge("mangaassist_hallucination_blocked_sessions", "Sessions currently blocked", registry=r)


_BY_REGISTRY: "weakref.WeakKeyDictionary[CollectorRegistry, HallucinationMetrics]" = weakref.WeakKeyDictionary()


def for_registry(metrics: Any = None) -> HallucinationMetrics:
    """``metrics``: a HallucinationMetrics, the service's ``Metrics`` (uses its registry), a
    CollectorRegistry, or None (a private registry)."""
    if isinstance(metrics, HallucinationMetrics):
        return metrics
    registry = getattr(metrics, "registry", metrics)
    if registry is None:
        return HallucinationMetrics()
    if not isinstance(registry, CollectorRegistry):
        raise TypeError(f"expected Metrics, CollectorRegistry or HallucinationMetrics, got {type(metrics).__name__}")
    found = _BY_REGISTRY.get(registry)
    if found is None:
        found = _BY_REGISTRY[registry] = HallucinationMetrics(registry)
    return found
