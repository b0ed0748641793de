"""The service's periodic jobs over the traffic log: drift (server/drift/monitor.py) and Triton cost
(server/traffic/cost.py). Started by ``server.app.start_server``, stopped at drain."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def start_monitors(settings: Any, traffic: Any, components: Any, metrics: Any, supervisor: Any = None) -> list[Any]:
    jobs: list[Any] = []
    if settings.drift.enabled and traffic.store is not None:
        from server.drift.monitor import DriftMonitor

        jobs.append(DriftMonitor(settings, traffic.store, components.backend, metrics))
    url = settings.costs.triton_metrics_url or (supervisor.triton.metrics_url if supervisor is not None else "")
    if url:
        from server.traffic.cost import TritonCostMonitor

        c = settings.costs
        jobs.append(TritonCostMonitor(url, c.instance_usd_per_hour, c.instance_capacity, c.interval_s, metrics))
    for job in jobs:
        job.start()
    return jobs
