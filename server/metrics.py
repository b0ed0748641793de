"""Prometheus metrics for the ensemble service, on a registry of their own (one per server instance,
so tests can run several servers in one process). Served over HTTP at ``server.metrics_port``/metrics.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Seconds. Dense below 50 ms (the classifier's p99 target), then up to the LLM range.
_STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.stage_seconds = Histogram(
            "mangaassist_stage_seconds", "Latency of one pipeline stage", ["stage"], registry=r, buckets=_STAGE_BUCKETS
        )
        self.request_seconds = Histogram(
            "mangaassist_request_seconds", "Latency of one RPC", ["method"], registry=r, buckets=_STAGE_BUCKETS
        )
        self.requests = Counter("mangaassist_requests", "RPCs by method and status code", ["method", "code"], registry=r)
        self.errors = Counter("mangaassist_errors", "Errors returned, by status code and reason", ["code", "reason"], registry=r)
        self.intents = Counter("mangaassist_intents", "Intents decided, by source (rule|model)", ["intent", "source"], registry=r)
        self.tiers = Counter("mangaassist_tiers", "Answers by tier", ["tier"], registry=r)
        self.degraded = Counter("mangaassist_degraded", "Degraded responses by reason", ["reason"], registry=r)
        self.rerank_decisions = Counter(
            "mangaassist_rerank_decisions",
            "Rerank stage per chat: reranked | probe | skipped_budget | skipped_expected | cut | failed", ["decision"],
            registry=r)
        self.in_flight = Gauge("mangaassist_in_flight", "RPCs holding an admission slot", registry=r)
        self.shed = Counter("mangaassist_shed", "RPCs refused by admission control", registry=r)

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage).observe(seconds)

    def count_degraded(self, reasons: list[str] | tuple[str, ...]) -> None:
        for reason in reasons:
            self.degraded.labels(reason).inc()

    def serve_http(self, port: int, addr: str = "0.0.0.0") -> tuple[object, int]:
        """Start the /metrics HTTP endpoint in a daemon thread; returns (server, bound port)."""
        httpd, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return httpd, httpd.server_port
