"""One StageTimings record feeds the response timings, the Prometheus histogram and a trace span."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from server.metrics import Metrics
from server.telemetry import StageTimings

pytestmark = pytest.mark.L0


def test_stage_feeds_timings_metrics_and_spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process; later tests just add spans to this exporter

    metrics = Metrics()
    timings = StageTimings(metrics)
    with timings.stage("classify"):
        pass
    with pytest.raises(RuntimeError):
        with timings.stage("embed"):
            raise RuntimeError("recorded even when the stage fails")
    assert [name for name, _ in timings.as_list()] == ["classify", "embed"]
    assert timings.ms("classify") >= 0 and timings.ms("rerank") is None
    assert metrics.registry.get_sample_value("mangaassist_stage_seconds_count", {"stage": "classify"}) == 1
    assert metrics.registry.get_sample_value("mangaassist_stage_seconds_count", {"stage": "embed"}) == 1
    if trace.get_tracer_provider() is provider:  # (another test may have installed one first)
        names = [s.name for s in exporter.get_finished_spans()]
        assert names[-2:] == ["classify", "embed"]
