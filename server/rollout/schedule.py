"""The rollout plan on a schedule: shadow -> canary steps -> promote, moved on (or aborted) on statistics.

:func:`decide` is a pure function of the plan, where the rollout stands (config.py ``RolloutConfig.phase``), how long
it has stood there, and the counts the canary guards already keep (:class:`Evidence`). :class:`RolloutSchedule` is
the periodic job that applies it: ONE writer -- under ``state.backend: redis`` it runs on the replica holding the
lease ``<prefix>lease:rollout-schedule`` (server/traffic/lease.py), and a move is published as the cluster's rollout
decision (controller.py :class:`SharedDecisions`), which every replica's router follows within ``rollout.poll_s``; in
one process the same job runs unleased. The per-session bucket routing (config.py ``version_for``) is unchanged, so a
session on the canary at 1 % is still on it at 5 %.

**The statistical rule.** For escalation rate (escalated feedback / answers) and thumbs-down share
(down / (up + down)), canary minus stable, the one-sided ``1 - alpha`` bounds of Newcombe's hybrid score interval
for a difference of two independent proportions (Newcombe 1998, method 10: each proportion's Wilson score interval,
combined in quadrature around the observed difference):

* **progress** only when the step's dwell time and minimum canary answers are met, no guard is crossed, and for
  *both* rates the upper bound of (canary - stable) is below the guard's allowed delta
  (``guard_max_escalation_delta``, ``guard_max_thumbs_down_delta``) -- a one-sided non-inferiority test at level
  ``alpha``: "the canary is at most delta worse" is shown, not merely "no worse was seen";
* **abort** (the controller's automatic rollback path) when for either rate the lower bound is above the delta --
  the canary is worse than allowed with significance;
* **hold** otherwise (too few answers or thumbs for the interval to decide either way).

Why Wilson/Newcombe and not the plain normal (Wald) interval or a bootstrap: escalation rates sit near 0-3 % and a
step starts with few thumbs; there the Wald interval collapses to zero width at 0 events (0 escalations in 50
answers would "prove" anything) and a bootstrap of 0 events resamples only zeros, while the Wilson interval keeps a
width of about z^2 / n and its coverage stays near nominal for small n and extreme p. It is closed-form (a few lines,
no scipy), deterministic, and with no thumbs at all its bounds are [0, 1], so "not enough feedback" holds by itself
instead of needing another threshold. Limit: the job looks at the same step repeatedly, which inflates the
error rate of a fixed-sample test; the dwell time and ``min_samples`` bound how early a look can progress, and
``rollout.plan_alpha`` (default 0.025 one-sided) is set tighter than the usual 0.05 for that reason.

The point-estimate escalation / thumbs-down guards (controller.py ``guard_breaches``) are not applied while a plan
runs -- these two rates are judged here, with significance; the error, low-confidence and p99 guards stay immediate.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any, Callable, Sequence

from server.rollout.config import Canary, RolloutConfig
from server.periodic import PeriodicJob

log = logging.getLogger(__name__)


def wilson(k: int, n: int, z: float) -> tuple[float, float, float]:
    """(p, lower, upper) of the Wilson score interval for k successes in n; n == 0: (0, 0, 1)."""
    if n <= 0:
        return 0.0, 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return p, max(0.0, centre - half), min(1.0, centre + half)


def diff_bounds(k1: int, n1: int, k2: int, n2: int, alpha: float) -> tuple[float, float, float]:
    """(d, lower, upper): p1 - p2 and its one-sided ``1 - alpha`` bounds (Newcombe's hybrid score interval)."""
    z = NormalDist().inv_cdf(1 - alpha)
    p1, l1, u1 = wilson(k1, n1, z)
    p2, l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


@dataclass(frozen=True)
class Evidence:
    """The counts at the current step (since it started): the canary guards' counts, the cluster's under Redis."""

    canary_answers: int = 0
    stable_answers: int = 0
    canary_escalated: int = 0
    stable_escalated: int = 0
    canary_up: int = 0
    canary_down: int = 0
    stable_up: int = 0
    stable_down: int = 0
    shadow_samples: int = 0  # shadow calls answered (the shadow phase)


@dataclass(frozen=True)
class Limits:
    max_escalation_delta: float = 0.01
    max_thumbs_down_delta: float = 0.02
    alpha: float = 0.025


@dataclass(frozen=True)
class Decision:
    action: str  # none | hold | progress | promote | await_approval | abort
    reason: str
    to: RolloutConfig | None = None  # progress / promote: the config to apply


def decide(config: RolloutConfig, since: float, now: float, ev: Evidence, limits: Limits,
           breaches: Sequence[str] = ()) -> Decision:
    """What the schedule does next (pure: no clock, no I/O). ``since``: when the rollout reached its current point."""
    phase, index = config.phase()
    plan = config.plan
    if plan is None or phase == "none":
        return Decision("none", "no plan")
    elapsed = now - since
    if phase == "shadow":
        if ev.shadow_samples < plan.shadow_min_samples or elapsed < plan.shadow_min_seconds:
            return Decision("hold", f"shadow: {ev.shadow_samples}/{plan.shadow_min_samples} samples, "
                                    f"{elapsed:.0f}/{plan.shadow_min_seconds:g} s")
        first = plan.steps[0]
        return Decision("progress", f"shadow done ({ev.shadow_samples} samples, {elapsed:.0f} s): canary {first.percent:g}%",
                        replace(config, shadow=None, canary=Canary(plan.version, first.percent)))
    if index is None:  # parse() refuses this; a guard against a hand-built config
        return Decision("hold", "the canary is not at a step of the plan")
    if breaches:
        return Decision("abort", "; ".join(breaches))
    esc = diff_bounds(ev.canary_escalated, ev.canary_answers, ev.stable_escalated, ev.stable_answers, limits.alpha)
    down = diff_bounds(ev.canary_down, ev.canary_up + ev.canary_down, ev.stable_down, ev.stable_up + ev.stable_down,
                       limits.alpha)
    rates = (("escalation rate", esc, limits.max_escalation_delta), ("thumbs-down share", down, limits.max_thumbs_down_delta))
    described = "; ".join(f"{name} {d:+.3f} [{lo:+.3f}, {hi:+.3f}] vs delta {delta:g}" for name, (d, lo, hi), delta in rates)
    worse = [name for name, (_, lo, _), delta in rates if lo > delta]
    if worse:
        return Decision("abort", f"{' and '.join(worse)} significantly worse than stable (one-sided "
                                 f"{1 - limits.alpha:.3g} bound over the delta): {described}")
    step = plan.steps[index]
    if ev.canary_answers < step.min_samples or elapsed < step.dwell_s:
        return Decision("hold", f"step {step.percent:g}%: {ev.canary_answers}/{step.min_samples} answers, "
                                f"{elapsed:.0f}/{step.dwell_s:g} s; {described}")
    unsure = [name for name, (_, _, hi), delta in rates if hi >= delta]
    if unsure:
        return Decision("hold", f"step {step.percent:g}%: {' and '.join(unsure)} not shown within the delta yet: {described}")
    if index + 1 < len(plan.steps):
        nxt = plan.steps[index + 1]
        return Decision("progress", f"step {step.percent:g}% passed ({described}): canary {nxt.percent:g}%",
                        replace(config, canary=Canary(plan.version, nxt.percent)))
    if plan.require_approval:
        return Decision("await_approval", f"last step {step.percent:g}% passed ({described}); waiting for "
                                          f"`mangaassist model promote {plan.version} --approved-by WHO --reason WHY`")
    return Decision("promote", f"last step {step.percent:g}% passed ({described}): stable := {plan.version}",
                    RolloutConfig(stable=plan.version, model=config.model))


def plan_id(config: RolloutConfig) -> str | None:
    """The same id at every point of one plan (the decision a replica follows names it), None without a plan."""
    if config.plan is None:
        return None
    return json.dumps({"model": config.model, "stable": config.stable, "plan": config.plan.to_dict()}, sort_keys=True)


class RolloutSchedule(PeriodicJob):
    """Every ``rollout.plan_interval_s``: :func:`decide` on the controller's counts, then apply it through the
    controller (:meth:`~server.rollout.controller.RolloutController.advance` / ``rollback``)."""

    def __init__(self, controller: Any, *, interval_s: float, clock: Callable[[], float] = time.time) -> None:
        self.controller, self.interval_s, self.clock = controller, interval_s, clock
        self.last: Decision | None = None
        self._since: dict[str, float] = {}  # a point of a plan (its config as JSON) -> when it was reached

    def since(self, config: RolloutConfig, reached: float | None) -> float:
        """When ``config`` was reached: the cluster's decision that led to it when there is one, else when this
        job first saw it (a new leader restarts the dwell of a step it did not see begin: the safe side)."""
        key = json.dumps(config.to_dict(), sort_keys=True)
        if key not in self._since:
            self._since = {key: reached if reached is not None else self.clock()}  # older points are history
        return self._since[key]

    async def run_once(self) -> Decision | None:
        c = self.controller
        config = c.config
        if config is None or config.plan is None:
            self.last = None
            return None
        await c.refresh_counts()
        now = self.clock()
        decision = decide(config, self.since(config, await c.reached_at(config)), now, c.evidence(), c.limits(),
                          c.guard_breaches())
        self.last = decision
        c.last_decision = {"action": decision.action, "reason": decision.reason}
        if c.config is not config:  # changed while we looked (a reload, a follow): judge it next time
            return decision
        if decision.action == "abort":
            c.rollback(decision.reason)
        elif decision.action in ("progress", "promote") and decision.to is not None:
            c.advance(decision.to, decision.action, decision.reason, at=now)
            self._since = {json.dumps(decision.to.to_dict(), sort_keys=True): now}
        elif decision.action == "await_approval" and c.awaiting != decision.reason:
            c.awaiting = decision.reason
            log.warning("rollout: %s", decision.reason)
        return decision
