"""Admission control: a hard cap on in-flight model RPCs that fails fast, never queues.

Queueing in front of a latency budget only converts overload into timeouts; shedding with
RESOURCE_EXHAUSTED lets the caller (or its load balancer) retry elsewhere with backoff. While draining,
new requests get UNAVAILABLE. The event loop is single-threaded, so a counter is enough.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from server.errors import Overloaded, Unavailable
from server.metrics import Metrics


class Admission:
    def __init__(self, limit: int, metrics: Metrics | None = None) -> None:
        self.limit = limit
        self.in_flight = 0
        self.draining = False
        self._metrics = metrics

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        if self.draining:
            raise Unavailable("server is shutting down; retry on another replica", reason="draining")
        if self.in_flight >= self.limit:
            if self._metrics is not None:
                self._metrics.shed.inc()
            raise Overloaded(f"{self.limit} requests already in flight; retry with backoff")
        self.in_flight += 1
        if self._metrics is not None:
            self._metrics.in_flight.inc()
        try:
            yield
        finally:
            self.in_flight -= 1
            if self._metrics is not None:
                self._metrics.in_flight.dec()
