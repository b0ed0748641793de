"""The rollout's parts for the composition root (server/app.py): the FeedbackStore, and the RolloutController
when ``rollout.file`` is set -- checking versions on the service's Triton client and gate records in the
registry under ``rollout.lifecycle_dir``."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from server.rollout.controller import RolloutController, SharedDecisions
from server.rollout.counters import SharedCounters
from server.rollout.feedback import FeedbackStore, SharedFeedbackStore

log = logging.getLogger(__name__)


class RegistryGate:
    """:meth:`~server.rollout.gate_records.RegistryReader.require_gate` on the registry in ``lifecycle_dir``
    (``<dir>/mlflow.db``), opened on first use (MLflow loads in ~1 s) and called from a worker thread; the served
    file must be there and hash to the file that was gated when the version's directory is on this disk."""

    def __init__(self, lifecycle_dir: str, triton_repository: Path) -> None:
        self.dir = lifecycle_dir
        self.repository = triton_repository
        self._registry: Any = None
        self._lock = threading.Lock()
        self._warned: set[tuple[str, str]] = set()

    def registry(self) -> Any:
        with self._lock:
            if self._registry is None:
                from server.rollout.gate_records import RegistryReader

                self._registry = RegistryReader(f"sqlite:///{Path(self.dir).resolve() / 'mlflow.db'}")
            return self._registry

    def served_file(self, model: str, version: str) -> Path | None:
        """The file this service's Triton serves for the version, when the version's directory is in the repository
        on this disk (then a missing or different ``model.onnx`` is refused); None when it is not here -- the
        repository lives elsewhere (a Triton pod's model sync) or is not the one serving the versions: the registry's
        gate record is then all there is to check, and a warning says so."""
        vdir = Path(self.repository) / model / str(version)
        if not vdir.is_dir():
            if (model, str(version)) not in self._warned:
                self._warned.add((model, str(version)))
                log.warning("rollout: %s is not on this disk; %s version %s is checked against its gate record only, "
                            "not the served file", vdir, model, version)
            return None
        return vdir / "model.onnx"

    def __call__(self, model: str, version: str) -> None:
        """GateRequired (the controller refuses the rollout, logs it and keeps the running config) unless the
        version has a passing gate record and the file served for it hashes to the file that was gated."""
        self.registry().require_gate(model, version, served_file=self.served_file(model, version))

    def note(self, model: str, version: str, key: str, value: str) -> None:
        """Tag the version (e.g. ``rollout.rolled_back``: why the service rolled its canary back)."""
        reader = self.registry()
        info = reader.version(model, version)
        if info is not None:
            reader.client.set_model_version_tag(model, info.registry_version, key, value)


def rollout_parts(settings: Any, backend: Any, metrics: Any) -> dict[str, Any]:
    """``{"feedback": FeedbackStore, "rollout": RolloutController | None}`` for the Pipeline."""
    r, st = settings.rollout, settings.state
    if st.shared:  # attribution in Redis: a Feedback on another replica finds the answer
        feedback: FeedbackStore = SharedFeedbackStore(st.redis_url, key_prefix=st.key_prefix, ttl_s=st.feedback_ttl_s,
                                                      timeout_ms=st.timeout_ms, window=r.feedback_window,
                                                      db_path=r.feedback_db)
    else:
        feedback = FeedbackStore(window=r.feedback_window, db_path=r.feedback_db)
    if not r.file:
        return {"feedback": feedback, "rollout": None}
    triton = getattr(backend, "triton", None)

    async def version_ready(model: str, version: str) -> bool:
        if triton is None:  # the fake backend: every version "exists"
            return True
        return bool(await triton.transport().is_model_ready(model, version, client_timeout=settings.triton.ready_timeout_s))

    gate = RegistryGate(r.lifecycle_dir, settings.paths.triton_repository) if r.lifecycle_dir else None
    decisions = (SharedDecisions(st.redis_url, key_prefix=st.key_prefix, timeout_ms=st.timeout_ms)
                 if st.shared else None)  # a rollback on one replica is the cluster's
    counters = (SharedCounters(st.redis_url, key_prefix=st.key_prefix, ttl_s=st.feedback_ttl_s, timeout_ms=st.timeout_ms)
                if st.shared else None)  # the guards judge every replica's answers and feedback
    controller = RolloutController(r, backend=backend, feedback=feedback, version_ready=version_ready,
                                   gate_check=gate, registry=metrics.registry, note=gate.note if gate else None,
                                   decisions=decisions, counters=counters)
    return {"feedback": feedback, "rollout": controller}


def schedule_job(settings: Any, controller: RolloutController | None) -> Any | None:
    """The rollout plan's schedule (server/rollout/schedule.py), started: ONE writer -- under ``state.backend:
    redis`` the replica holding the lease ``<prefix>lease:rollout-schedule`` (server/traffic/lease.py), in one
    process this process. None without a rollout file. It does nothing while the running rollout has no plan."""
    if controller is None:
        return None
    from server.rollout.schedule import RolloutSchedule

    job: Any = RolloutSchedule(controller, interval_s=settings.rollout.plan_interval_s)
    st = settings.state
    if st.shared:
        from server.traffic.lease import LeasedJob

        # a lease of 5 s at least: a busy leader keeps it (a step dwells for minutes); a dead one blocks <= 5 s
        job = LeasedJob(job, st.redis_url, name="rollout-schedule", key_prefix=st.key_prefix,
                        ttl_s=max(5.0, 2 * settings.rollout.plan_interval_s))
    job.start()
    return job
