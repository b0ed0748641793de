"""Per-request stage timings: one record feeding trace spans, Prometheus histograms and the response.

``StageTimings.stage(name)`` is a context manager around one stage. It measures with
``time.perf_counter``, opens an OpenTelemetry span (a no-op unless an exporter is configured), and on exit
records ``(stage, ms)`` for the response and observes the stage-latency histogram. Concurrent stages
(classify and embed run side by side) each record their own entry.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Iterator

from opentelemetry import trace

from server.metrics import Metrics
from server.settings import TelemetrySettings

log = logging.getLogger(__name__)
_TRACER_NAME = "mangaassist.server"


@dataclass
class StageTimings:
    metrics: Metrics | None = None
    entries: list[tuple[str, float]] = field(default_factory=list)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[trace.Span]:
        tracer = trace.get_tracer(_TRACER_NAME)
        start = time.perf_counter()
        with tracer.start_as_current_span(name) as span:
            try:
                yield span
            finally:
                ms = (time.perf_counter() - start) * 1000.0
                self.entries.append((name, ms))
                if self.metrics is not None:
                    self.metrics.observe_stage(name, ms / 1000.0)

    def as_list(self) -> list[tuple[str, float]]:
        return list(self.entries)

    def ms(self, name: str) -> float | None:
        """Total time recorded for ``name`` (None when the stage did not run)."""
        found = [ms for stage, ms in self.entries if stage == name]
        return sum(found) if found else None


def setup_tracing(settings: TelemetrySettings) -> None:
    """Install a tracer provider per ``settings.otel_exporter``; "none" leaves OpenTelemetry's no-op default."""
    if settings.otel_exporter == "none":
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    if settings.otel_exporter == "console":
        exporter = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as err:  # the OTLP exporter is an optional distribution
            raise RuntimeError(
                "telemetry.otel_exporter=otlp needs opentelemetry-exporter-otlp-proto-grpc installed"
            ) from err
        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint) if settings.otlp_endpoint else OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing: %s exporter", settings.otel_exporter)
