"""The service's periodic jobs over the traffic log: drift (server/drift/monitor.py), the reversal triggers
(server/drift/triggers.py) and Triton cost (server/traffic/cost.py). Started by ``server.app.start_server``, stopped at drain.
Under ``state.backend: redis`` the drift, trigger and label-queue jobs run on one replica at a time, once per period
across the cluster (a Redis lease, server/traffic/lease.py); the Triton cost gauges on every replica."""

from __future__ import annotations

from typing import Any


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
