"""The service's periodic jobs over the traffic log: drift (server/drift/monitor.py), the reversal triggers
(server/drift/triggers.py) and Triton cost (server/traffic/cost.py). Started by ``server.app.start_server``, stopped at drain.
Under ``state.backend: redis`` the drift, trigger and label-queue jobs run on one replica at a time, once per period
across the cluster (a Redis lease, server/traffic/lease.py); the Triton cost gauges on every replica."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


class PeriodicJob:
    """``run_once()`` every ``interval_s`` on the service's loop (first run at once with ``run_first``); a failed
    run is logged and the next one retries. ``start()`` / ``await stop()`` (the drain stops it)."""

    interval_s: float = 60.0
    run_first: bool = False
    _task: asyncio.Task[None] | None = None

    async def run_once(self) -> Any:
        raise NotImplementedError

    def on_failure(self, err: Exception) -> None:
        log.warning("%s run failed: %r", type(self).__name__, err)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=type(self).__name__)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Cancel the loop and wait for it -- bounded: a cancellation that a body in flight absorbs (an
        ``asyncio.wait_for`` finishing at the same moment) is repeated until the task ends, at most ``timeout_s``."""
        task, self._task = self._task, None
        if task is None:
            return
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not task.done() and asyncio.get_running_loop().time() < deadline:
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        if task.done():
            await asyncio.gather(task, return_exceptions=True)
        else:
            log.warning("%s: the periodic job did not stop within %.0f s", type(self).__name__, timeout_s)

    async def _loop(self) -> None:
        if not self.run_first:
            await asyncio.sleep(self.interval_s)
        while True:
            try:
                await self.run_once()
            except Exception as err:  # noqa: BLE001 -- the last gauges stay; the next run retries
                self.on_failure(err)
            await asyncio.sleep(self.interval_s)


def start_monitors(settings: Any, traffic: Any, components: Any, metrics: Any, supervisor: Any = None) -> list[Any]:
    jobs: list[Any] = []
    triggers = None
    if settings.drift.enabled and traffic.store is not None:
        from server.drift.monitor import DriftMonitor

        jobs.append(DriftMonitor(settings, traffic.store, components.backend, metrics))
    if settings.drift.label_queue_dir and traffic.store is not None:
        from server.drift.label_queue import LabelQueueJob

        jobs.append(LabelQueueJob(settings, traffic.store, metrics))
    if settings.triggers.enabled and traffic.store is not None:
        from server.drift.triggers import TriggerMonitor

        triggers = TriggerMonitor(settings, traffic.store, metrics)
        jobs.append(triggers)
    url = settings.costs.triton_metrics_url or (supervisor.triton.metrics_url if supervisor is not None else "")
    if url:
        from server.traffic.cost import TritonCostMonitor, ensemble_names

        c, t = settings.costs, settings.triton
        # the repository's ensembles when it is on this machine, else the ones the service calls (docs/architecture.md)
        ensembles = ensemble_names(settings.paths.triton_repository) or frozenset(
            {t.classifier_model, t.embedder_model, t.reranker_model})
        cost_job = TritonCostMonitor(url, c.instance_usd_per_hour, c.instance_capacity, c.interval_s, metrics,
                                     ensembles=ensembles)
        jobs.append(cost_job)
        if triggers is not None:  # the cost-per-turn trigger prices a model-path turn at the measured Triton cost
            path = (t.classifier_model, t.embedder_model, t.adapter_model)
            triggers.triton_usd_per_turn = lambda: (None if cost_job.last is None
                                                    else sum(cost_job.last.per_inference_usd.get(m, 0.0) for m in path))
    st = settings.state
    if st.shared:  # one replica at a time runs the jobs over the shared log (server/traffic/lease.py)
        from server.traffic.lease import LeasedJob

        once = {"DriftMonitor": "drift", "TriggerMonitor": "triggers", "LabelQueueJob": "label-queue"}
        jobs = [LeasedJob(job, st.redis_url, name=once[type(job).__name__], key_prefix=st.key_prefix)
                if type(job).__name__ in once else job for job in jobs]  # Triton cost: every replica (its gauges)
    for job in jobs:
        job.start()
    return jobs
