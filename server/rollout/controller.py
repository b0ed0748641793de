"""Which classifier version answers a request, while versions change under live traffic.

* **Reload without restart**: :meth:`RolloutController.watch` polls ``rollout.file`` (``rollout.poll_s``); a
  changed file is parsed (server/rollout/config.py) and validated -- every version named must be served by
  Triton (``version_ready``), stable and canary need a passing gate record (``gate_check``, the registry's
  ``require_gate``) -- then swapped in with one assignment. A refused file leaves the running config in place;
  the reason is logged, counted (``mangaassist_rollout_changes{outcome="refused"}``) and kept in ``last_error``.
* **Canary**: :meth:`pin` puts each request on a version (stable hash of session_id, config.py); the request
  keeps that version to the end even if the config changes meanwhile, and Triton keeps serving every listed
  version, so no request fails during a switch.
* **Shadow**: :meth:`observe` queues, after the response is sent, a call to the shadow version with the same
  text; agreement with the answer's intent and the call's latency are recorded (``mangaassist_shadow_calls``,
  ``mangaassist_shadow_seconds``, :meth:`status`). Bounded: beyond ``shadow_max_in_flight`` calls are dropped.
* **Guards**: per version since the canary started, each vs stable -- error rate (classifier failed or timed out),
  classify p99, low-confidence share, escalation rate and thumbs-down share (from ``Feedback``). One crossed -> :meth:`rollback`: the canary
  is removed at once, the file is rewritten (a restart keeps the rollback), the registry notes it.
* **The cluster** (``state.backend: redis``): the guards' and shadow's counts are the cluster's
  (server/rollout/counters.py :class:`SharedCounters`, every replica's answers and feedback), the rollback decision is
  published and followed by every replica (:class:`SharedDecisions`); latency percentiles stay per replica.
* **A plan** (config.py ``plan``): :class:`~server.rollout.schedule.RolloutSchedule` moves the rollout through its
  shadow phase and canary steps to promotion, or rolls it back, on statistics (server/rollout/schedule.py); a move is
  :meth:`advance`, published like a rollback and followed by every replica running the same plan (:meth:`follow_decision`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from server.errors import BackendError, RolloutRefused
from server.retrieval.query import expand as classifier_input
from server.rollout import config as cfg
from server.rollout.config import Canary, RolloutConfig
from server.rollout.counters import config_id
from server.rollout.feedback import FeedbackRecord, FeedbackStore
from server.rollout.schedule import Evidence, Limits, plan_id

log = logging.getLogger(__name__)

VersionReady = Callable[[str, str], Awaitable[bool]]
GateCheck = Callable[[str, str], None]  # raises (any Exception) when the version may not answer customers


@dataclass
class VersionStats:
    answers: int = 0
    errors: int = 0
    low_confidence: int = 0
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=5000))

    def p99(self) -> float:
        return float(np.percentile(np.array(self.latencies_ms), 99)) if self.latencies_ms else 0.0


@dataclass
class ShadowStats:
    calls: int = 0
    agree: int = 0
    errors: int = 0
    dropped: int = 0
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=5000))

    def summary(self) -> dict[str, Any]:
        done = self.calls - self.errors
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        return {"calls": self.calls, "agree": self.agree, "errors": self.errors, "dropped": self.dropped,
                "agreement": round(self.agree / done, 4) if done else None,
                "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2)}


class RolloutController:
    def __init__(
        self,
        settings: Any,  # server.settings.RolloutSettings
        *,
        backend: Any,
        feedback: FeedbackStore,
        version_ready: VersionReady,
        gate_check: GateCheck | None,
        registry: Any,  # prometheus CollectorRegistry
        note: Callable[[str, str, str, str], None] | None = None,
        decisions: Any | None = None,
        counters: Any | None = None,
    ) -> None:
        """``note(model, version, key, value)``: the registry's annotation (auto-rollbacks), best effort."""
        self.settings = settings
        self.path = Path(settings.file)
        self.backend = backend
        self.feedback = feedback
        self._version_ready = version_ready
        self._gate_check = gate_check
        self._note = note
        #: the cluster's rollout decisions (:class:`SharedDecisions`, ``state.backend: redis``): a rollback taken here
        #: is published; one taken on another replica is followed within ``poll_s`` and after a restart
        self.decisions = decisions
        self._followed_at = 0.0
        #: the cluster's guard / shadow counts (:class:`~server.rollout.counters.SharedCounters`, ``state.backend:
        #: redis``): the guards judge every replica's answers and feedback, not this replica's share
        self.counters = counters
        self._cid = ""  # the running canary's id in the shared counters (counters.config_id)
        self._cluster: dict[str, dict[str, int]] = {}  # version -> the cluster's guard counts, last read
        self._cluster_shadow: dict[str, dict[str, int]] = {}  # version -> the cluster's shadow counts, last read
        self._pending: set[asyncio.Task] = set()
        self.config: RolloutConfig | None = None
        self.last_error = ""
        self.events: deque[dict[str, Any]] = deque(maxlen=200)
        self._sig: tuple[int, int, int] | None = None
        self._stats: dict[str, VersionStats] = {}
        self._feedback_base: dict[str, dict[str, int]] = {}
        self.shadow_stats: dict[str, ShadowStats] = {}
        self._shadow_in_flight = 0
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rolling_back = False
        self.awaiting = ""  # the plan's last step passed and waits for a person's `mangaassist model promote`
        self.last_decision: dict[str, str] = {}  # the schedule's last verdict (status)
        self.m_changes = Counter("mangaassist_rollout_changes", "Rollout config changes by outcome (applied|refused|rolled_back)",
                                 ["outcome"], registry=registry)
        self.m_answers = Counter("mangaassist_rollout_answers", "Answers by classifier version", ["version"], registry=registry)
        self.m_canary = Gauge("mangaassist_rollout_canary_percent", "Share of sessions on the canary", registry=registry)
        self.m_shadow = Counter("mangaassist_shadow_calls", "Shadow calls by version and outcome (agree|disagree|error|dropped)",
                                ["version", "outcome"], registry=registry)
        self.m_shadow_s = Histogram("mangaassist_shadow_seconds", "Latency of one shadow classifier call", ["version"],
                                    registry=registry, buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0))

    # ------------------------------------------------------------------ config
    async def validate(self, config: RolloutConfig) -> None:
        """RolloutRefused unless Triton serves every version named and stable/canary may answer customers."""
        named = {config.stable, *(v for v in (config.shadow, config.canary and config.canary.version) if v)}
        for version in sorted(named, key=int):
            try:
                ready = await self._version_ready(config.model, version)
            except Exception as err:  # noqa: BLE001 -- Triton unreachable: cannot vouch for the version
                raise RolloutRefused(f"rollout: cannot check {config.model} version {version} on Triton ({err})") from None
            if not ready:
                raise RolloutRefused(f"rollout: {config.model} version {version} is unknown to Triton (not in the "
                                     "repository's version_policy, or not loaded)")
        gated = list(config.serving())
        if config.plan is not None and config.plan.version not in gated:  # it will answer customers on schedule
            gated.append(config.plan.version)
        for version in gated:
            if self._gate_check is None:
                if version != self.settings.default_version:
                    raise RolloutRefused(f"rollout: version {version} cannot answer customers: no registry configured "
                                         "(rollout.lifecycle_dir) to hold its gate record")
                continue
            try:
                await asyncio.to_thread(self._gate_check, config.model, version)
            except Exception as err:  # noqa: BLE001 -- the registry's GateRequired, or the registry itself failing
                raise RolloutRefused(f"rollout refused: {err}") from None

    async def apply(self, config: RolloutConfig, *, source: str = "api") -> None:
        await self.validate(config)
        self._swap(config, outcome="applied", source=source)

    def _swap(self, config: RolloutConfig, *, outcome: str, source: str, reason: str = "") -> None:
        old = self.config
        self.config = config  # one assignment: a request pins its version once, at its start
        if old != config:
            self.awaiting = ""
        if old is None or old.canary != config.canary:
            self._stats = {}
            self._feedback_base = self.feedback.counts(config.model)
            self._cluster, self._cluster_shadow = {}, {}
        self._cid = config_id(config.model, config.stable, asdict(config.canary) if config.canary else None)
        self.m_canary.set(config.canary.percent if config.canary else 0)
        self.m_changes.labels(outcome).inc()
        event = {"at": time.time(), "outcome": outcome, "source": source, "config": config.to_dict(), "reason": reason}
        self.events.append(event)
        log.info("rollout %s (%s): %s %s", outcome, source, config.to_dict(), reason)

    async def reload_if_changed(self) -> bool:
        """Apply the file if it changed since the last look; True when a new config went in."""
        try:
            st = self.path.stat()
        except OSError:
            return False  # no file (yet): keep what runs
        sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        if sig == self._sig:
            return False
        self._sig = sig
        try:
            new = cfg.read(self.path)
            if new == self.config:
                return False
            await self.apply(new, source=str(self.path))
            self.last_error = ""
            return True
        except RolloutRefused as err:
            self.last_error = str(err)
            self.m_changes.labels("refused").inc()
            self.events.append({"at": time.time(), "outcome": "refused", "source": str(self.path), "reason": str(err)})
            log.error("%s; the running rollout stays %s", err, self.config.to_dict() if self.config else "(none)")
            return False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.reload_if_changed()
        await self.follow_decision()  # a rollback the cluster took while this replica was down
        self._task = asyncio.create_task(self.watch(), name="rollout-watch")

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_s)
            try:
                await self.reload_if_changed()
                await self.follow_decision()
                await self.refresh_counts()
            except Exception:  # noqa: BLE001 -- the watcher must outlive any one bad reload
                log.exception("rollout reload failed; this is a bug")

    async def follow_decision(self) -> bool:
        """Obey the cluster's last rollout decision (an automatic rollback taken on any replica, or a move of the
        plan's schedule): when it moved on from the config this replica runs -- or from any point of the plan this
        replica runs (a replica restarted from the plan's first point joins the step the cluster is at) -- apply
        what it moved to. A decision about another config (the file has moved on since) is history. An unreachable
        store keeps the running config (retried next poll)."""
        if self.decisions is None or self.config is None:
            return False
        try:
            decision = await self.decisions.read()
        except Exception as err:  # noqa: BLE001 -- the shared store is down: keep what runs
            log.warning("rollout: cannot read the cluster's decision (%s); keeping %s", err, self.config.to_dict())
            return False
        if not decision or decision["at"] <= self._followed_at:
            return False
        self._followed_at = decision["at"]
        same_plan = decision.get("plan") is not None and decision["plan"] == plan_id(self.config)
        if (decision["from"] != self.config.to_dict() and not same_plan) or decision["to"] == self.config.to_dict():
            return False
        new = cfg.parse(decision["to"], model=self.config.model)
        outcome = decision.get("outcome", "rolled_back")
        self._swap(new, outcome=outcome, source=f"cluster ({decision.get('by', '?')})", reason=decision["reason"])
        (log.error if outcome == "rolled_back" else log.info)(
            "rollout: following the cluster's %s by %s at %.0f: %s", outcome, decision.get("by"), decision["at"],
            decision["reason"])
        return True

    async def reached_at(self, config: RolloutConfig) -> float | None:
        """When the cluster's schedule moved to ``config`` (its last decision), None when unknown or not shared."""
        if self.decisions is None:
            return None
        try:
            decision = await self.decisions.read()
        except Exception:  # noqa: BLE001 -- the schedule counts from when it saw the config
            return None
        if decision and decision.get("to") == config.to_dict():
            return float(decision.get("since", decision["at"]))
        return None

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # ------------------------------------------------------------------ the request path
    def pin(self, session_id: str) -> dict[str, str]:
        config = self.config
        return {config.model: config.version_for(session_id)} if config is not None else {}

    def observe(self, text: str, intent: Any, versions: Mapping[str, str], classify_ms: float | None, failed: bool,
                after_response: Callable[[Callable[[], None]], None] | None) -> None:
        """One answer given by ``versions``: count it for the guards; queue the shadow call after the response."""
        config = self.config
        if config is None or config.model not in versions:
            return
        version = versions[config.model]
        stats = self._stats.setdefault(version, VersionStats())
        stats.answers += 1
        self.m_answers.labels(version).inc()
        if failed:
            stats.errors += 1
        elif intent.confidence < self.settings.low_confidence:
            stats.low_confidence += 1
        if classify_ms is not None:
            stats.latencies_ms.append(classify_ms)
        if self.counters is not None:  # the cluster's count, judged when Redis answers (off the request path)
            self._count("guard", version, {"answers": 1, "errors": int(failed),
                                           "low_confidence": int(not failed and intent.confidence < self.settings.low_confidence)})
        self._check_guards()
        if config.shadow and config.shadow != version and not failed and text:
            job = lambda: self._spawn(self._shadow(config.model, config.shadow, text, intent.intent))  # noqa: E731
            after_response(job) if after_response is not None else job()

    def on_feedback(self, record: FeedbackRecord) -> None:
        config = self.config
        if self.counters is not None and config is not None and config.model in record.versions:
            self._count("guard", record.versions[config.model], {record.kind: 1})
        self._check_guards()

    # ------------------------------------------------------------------ the cluster's counts
    def _count(self, kind: str, version: str, fields: dict[str, int]) -> None:
        """Add to the cluster's counts of the running canary (``kind`` guard|shadow) and judge its totals."""
        config, cid = self.config, self._cid
        if config is None or self.counters is None:
            return
        read = [config.stable, config.canary.version] if kind == "guard" and config.canary else [version]
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        async def add() -> None:
            totals = await self.counters.add(kind, cid, version, fields, dict.fromkeys(read))
            if totals is not None and cid == self._cid:  # not a count of a rollout that has gone meanwhile
                (self._cluster if kind == "guard" else self._cluster_shadow).update(totals)
                if kind == "guard":
                    self._check_guards()

        def go() -> None:
            task = loop.create_task(add())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        loop.call_soon_threadsafe(go)

    async def refresh_counts(self) -> None:
        """Read the cluster's counts of the running canary (each ``poll_s``) and judge them: a replica that takes no
        traffic for a while still sees, and acts on, what the others counted."""
        config, cid = self.config, self._cid
        if self.counters is None or config is None:
            return
        if config.canary is not None:
            totals = await self.counters.read("guard", cid, dict.fromkeys([config.stable, config.canary.version]))
            if totals is not None and cid == self._cid:
                self._cluster.update(totals)
                self._check_guards()
        if config.shadow:
            totals = await self.counters.read("shadow", cid, [config.shadow])
            if totals is not None and cid == self._cid:
                self._cluster_shadow.update(totals)

    async def settle(self) -> None:
        """Wait for the counts sent to the shared store so far (tests, drain)."""
        await asyncio.sleep(0)
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
            await asyncio.sleep(0)

    # ------------------------------------------------------------------ shadow
    def _spawn(self, coro: Awaitable[None]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            coro.close()  # type: ignore[attr-defined]
            return
        loop.call_soon_threadsafe(lambda: loop.create_task(coro))  # type: ignore[arg-type]

    async def _shadow(self, model: str, version: str, text: str, answered: str) -> None:
        stats = self.shadow_stats.setdefault(version, ShadowStats())
        if self._shadow_in_flight >= self.settings.shadow_max_in_flight:
            stats.dropped += 1
            self.m_shadow.labels(version, "dropped").inc()
            self._count("shadow", version, {"dropped": 1})
            return
        self._shadow_in_flight += 1
        started = time.perf_counter()
        try:
            probs = await self.backend.classify([classifier_input(text)], timeout_s=self.settings.shadow_timeout_ms / 1000,
                                                version=version)
            from server.intents import INTENT_LABELS

            agree = INTENT_LABELS[int(np.argmax(probs[0]))] == answered
            stats.calls += 1
            stats.agree += int(agree)
            self._count("shadow", version, {"calls": 1, "agree": int(agree)})
            elapsed = time.perf_counter() - started
            stats.latencies_ms.append(elapsed * 1000)
            self.m_shadow_s.labels(version).observe(elapsed)
            self.m_shadow.labels(version, "agree" if agree else "disagree").inc()
        except BackendError as err:
            stats.calls += 1
            stats.errors += 1
            self._count("shadow", version, {"calls": 1, "errors": 1})
            self.m_shadow.labels(version, "error").inc()
            log.info("shadow call to %s v%s failed: %s", model, version, err)
        finally:
            self._shadow_in_flight -= 1

    # ------------------------------------------------------------------ guards + rollback
    def guard_breaches(self) -> list[str]:
        """The canary guards crossed right now (empty: healthy, or too few answers/feedback to judge)."""
        config, s = self.config, self.settings
        if config is None or config.canary is None or config.canary.percent <= 0:
            return []
        c = self._counted(config.canary.version)
        b = self._counted(config.stable)
        out = []
        if c.answers >= s.guard_min_requests:
            # vs stable, like every rate here: a slow shared box degrades both versions alike
            err = c.errors / c.answers - (b.errors / b.answers if b.answers else 0.0)
            if err > s.guard_max_error_rate:
                out.append(f"error rate +{err:.3f} over stable > {s.guard_max_error_rate:g}")
            low = c.low_confidence / c.answers - (b.low_confidence / b.answers if b.answers else 0.0)
            if low > s.guard_max_low_confidence_delta:
                out.append(f"low-confidence share +{low:.3f} over stable > {s.guard_max_low_confidence_delta:g}")
            # the p99s are this replica's own (a percentile does not add up across replicas): judged on its answers
            mine_c, mine_b = self._stats.get(config.canary.version), self._stats.get(config.stable)
            if (s.guard_max_p99_ratio > 0 and mine_c is not None and mine_c.answers >= s.guard_min_requests
                    and mine_b is not None and mine_b.answers >= s.guard_min_requests and b.p99() > 0):
                ratio = c.p99() / b.p99()
                if ratio > s.guard_max_p99_ratio and c.p99() > s.guard_p99_floor_ms:
                    out.append(f"classify p99 {c.p99():.1f} ms = {ratio:.2f}x stable > {s.guard_max_p99_ratio:g}x")
        if config.plan is not None:  # escalation and thumbs-down are judged with significance (schedule.py)
            return out
        fb = self._feedback_since(config.model)
        cf, bf = fb.get(config.canary.version, {}), fb.get(config.stable, {})
        judged = cf.get("thumbs_up", 0) + cf.get("thumbs_down", 0)
        if judged >= s.guard_min_feedback:
            down = cf.get("thumbs_down", 0) / judged
            base_judged = bf.get("thumbs_up", 0) + bf.get("thumbs_down", 0)
            base = bf.get("thumbs_down", 0) / base_judged if base_judged else 0.0
            if down - base > s.guard_max_thumbs_down_delta:
                out.append(f"thumbs-down share {down:.3f} vs stable {base:.3f} (+{down - base:.3f} > {s.guard_max_thumbs_down_delta:g})")
        if c.answers >= s.guard_min_requests:
            esc = cf.get("escalated", 0) / c.answers
            base = bf.get("escalated", 0) / b.answers if b.answers else 0.0
            if esc - base > s.guard_max_escalation_delta:
                out.append(f"escalation rate {esc:.3f} vs stable {base:.3f} (+{esc - base:.3f} > {s.guard_max_escalation_delta:g})")
        return out

    def evidence(self) -> Evidence:
        """The counts the plan's schedule judges: the guards' counts at the current step (the cluster's under Redis)."""
        config = self.config
        if config is None:
            return Evidence()
        shadow = self._shadow_summary(config.plan.version) if config.plan is not None else {"calls": 0, "errors": 0}
        samples = shadow["calls"] - shadow["errors"]
        if config.canary is None:
            return Evidence(shadow_samples=samples)
        c, b = self._counted(config.canary.version), self._counted(config.stable)
        fb = self._feedback_since(config.model)
        cf, bf = fb.get(config.canary.version, {}), fb.get(config.stable, {})
        return Evidence(canary_answers=c.answers, stable_answers=b.answers, canary_escalated=cf.get("escalated", 0),
                        stable_escalated=bf.get("escalated", 0), canary_up=cf.get("thumbs_up", 0),
                        canary_down=cf.get("thumbs_down", 0), stable_up=bf.get("thumbs_up", 0),
                        stable_down=bf.get("thumbs_down", 0), shadow_samples=samples)

    def limits(self) -> Limits:
        s = self.settings
        return Limits(s.guard_max_escalation_delta, s.guard_max_thumbs_down_delta, s.plan_alpha)

    def _counted(self, version: str) -> VersionStats:
        """The version's counts the guards judge: this replica's, or the cluster's (``counters``) with this
        replica's latencies."""
        mine = self._stats.get(version, VersionStats())
        if self.counters is None:
            return mine
        got = self._cluster.get(version, {})
        return VersionStats(answers=got.get("answers", 0), errors=got.get("errors", 0),
                            low_confidence=got.get("low_confidence", 0), latencies_ms=mine.latencies_ms)

    def _feedback_since(self, model: str) -> dict[str, dict[str, int]]:
        if self.counters is not None:  # the cluster's feedback on the running canary (counted since it started)
            return {v: {k: got.get(k, 0) for k in ("thumbs_up", "thumbs_down", "escalated")}
                    for v, got in self._cluster.items()}
        now = self.feedback.counts(model)
        return {v: {k: n - self._feedback_base.get(v, {}).get(k, 0) for k, n in c.items()} for v, c in now.items()}

    def _check_guards(self) -> None:
        if self._rolling_back:
            return
        breaches = self.guard_breaches()
        if breaches:
            self._rolling_back = True
            self.rollback("; ".join(breaches))

    def rollback(self, reason: str) -> RolloutConfig | None:
        """Remove the canary now (automatic or by command); rewrite the file so a restart keeps it."""
        config = self.config
        if config is None or config.canary is None:
            self._rolling_back = False
            return config
        canary = config.canary.version
        new = RolloutConfig(stable=config.stable, shadow=config.shadow, canary=None, model=config.model)
        self._swap(new, outcome="rolled_back", source="guard", reason=reason)
        log.error("rollout: canary %s v%s rolled back: %s", config.model, canary, reason)
        if self.counters is not None:  # the same canary started again later is judged from zero
            self._spawn(self.counters.clear(config_id(config.model, config.stable, asdict(config.canary)),
                                            {config.stable, canary}))
        self._persist(config, new, reason, "rolled_back")
        self._annotate(config.model, canary, "rollout.rolled_back", reason)
        self._rolling_back = False
        return new

    def advance(self, new: RolloutConfig, action: str, reason: str, *, at: float) -> None:
        """The plan's schedule moves on (``action`` progress | promote): applied here, published to the cluster
        (``at``: when the step began, on the schedule's clock) and written to the file, like a rollback."""
        old = self.config
        if old is None:
            return
        outcome = {"progress": "progressed", "promote": "promoted"}[action]
        self._swap(new, outcome=outcome, source="schedule", reason=reason)
        self._persist(old, new, reason, outcome, since=at)
        if action == "promote":
            self._annotate(old.model, new.stable, "rollout.promoted", reason)

    def _persist(self, old: RolloutConfig, new: RolloutConfig, reason: str, outcome: str, *,
                 since: float | None = None) -> None:
        if self.decisions is not None:  # every replica obeys it (follow_decision), restarted ones too
            decision = {"from": old.to_dict(), "to": new.to_dict(), "reason": reason, "at": time.time(),
                        "by": self.decisions.replica, "outcome": outcome}
            if plan_id(old) is not None:
                decision["plan"] = plan_id(old)
            if since is not None:
                decision["since"] = since
            self._followed_at = decision["at"]
            self._spawn(self.decisions.publish(decision))
        try:
            cfg.write(self.path, new)
            st = self.path.stat()
            self._sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError as err:
            log.error("rollout: could not rewrite %s after the %s: %s", self.path, outcome, err)

    def _annotate(self, model: str, version: str, key: str, value: str) -> None:
        if self._note is None:
            return
        note = self._note

        def annotate() -> None:
            try:
                note(model, version, key, value[:500])
            except Exception as err:  # noqa: BLE001 -- the registry is informational here
                log.warning("registry note %s failed: %s", key, err)

        self._spawn(asyncio.to_thread(annotate))

    # ------------------------------------------------------------------ status
    def _shadow_summary(self, version: str) -> dict[str, Any]:
        mine = self.shadow_stats.get(version, ShadowStats())
        if self.counters is None:
            return mine.summary()
        got = self._cluster_shadow.get(version, {})
        return ShadowStats(calls=got.get("calls", 0), agree=got.get("agree", 0), errors=got.get("errors", 0),
                           dropped=got.get("dropped", 0), latencies_ms=mine.latencies_ms).summary()

    def status(self) -> dict[str, Any]:
        config = self.config
        return {
            "config": config.to_dict() if config else None,
            "last_error": self.last_error,
            "versions": {v: {"answers": s.answers, "errors": s.errors, "low_confidence": s.low_confidence,
                             "classify_p99_ms": round(s.p99(), 2)}
                         for v, s in ((v, self._counted(v)) for v in sorted({*self._stats, *self._cluster}))},
            "feedback": self._feedback_since(config.model) if config else {},
            "shadow": {v: self._shadow_summary(v) for v in sorted({*self.shadow_stats, *self._cluster_shadow})},
            "counted": "cluster" if self.counters is not None else "replica",
            "guards": self.guard_breaches(),
            "plan": ({"phase": config.phase()[0], "step": config.phase()[1], "awaiting_approval": self.awaiting,
                      "schedule": self.last_decision} if config is not None and config.plan is not None else None),
            "events": list(self.events)[-20:],
        }


__all__ = ["Canary", "RolloutConfig", "RolloutController"]


class SharedDecisions:
    """The cluster's last rollout decision in Redis (``<prefix>rollout:decision``: JSON {from, to, reason, at, by}),
    no expiry: written by the replica that rolled back, read by every replica each ``poll_s`` and at start-up. The
    in-chart Redis keeps an append-only file, so the decision outlives a Redis restart too."""

    def __init__(self, url: str, *, key_prefix: str = "mangaassist:", timeout_ms: float = 50.0, client: Any = None) -> None:
        import os
        import socket

        import redis.asyncio as aioredis

        self.key = key_prefix + "rollout:decision"
        self.timeout_s = timeout_ms / 1000.0
        self.replica = f"{socket.gethostname()}/{os.getpid()}"
        self._redis = client or aioredis.from_url(url, socket_timeout=self.timeout_s,
                                                  socket_connect_timeout=self.timeout_s, retry_on_timeout=False)

    async def publish(self, decision: Mapping[str, Any]) -> None:
        import json

        for attempt in range(5):  # a rollback must reach the others: retried through a short outage
            try:
                await asyncio.wait_for(self._redis.set(self.key, json.dumps(decision)), self.timeout_s)
                return
            except Exception as err:  # noqa: BLE001
                log.warning("rollout: publishing the decision failed (%s), attempt %d", err, attempt + 1)
                await asyncio.sleep(0.2 * 2 ** attempt)
        log.error("rollout: the rollback could not be published; other replicas keep the canary")

    async def read(self) -> dict[str, Any] | None:
        import json

        raw = await asyncio.wait_for(self._redis.get(self.key), self.timeout_s)
        return json.loads(raw) if raw else None

    async def aclose(self) -> None:
        await self._redis.aclose()
