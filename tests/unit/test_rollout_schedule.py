"""L0: the rollout plan (server/rollout/config.py) and its schedule's decision (server/rollout/schedule.py), with a
fake clock: enough clean samples move on, too few or too early hold, a significantly worse canary aborts, the last
step waits for a person when the plan asks for one. The service path: tests/integration/test_rollout_service.py."""

from __future__ import annotations

import pytest

from server.errors import RolloutRefused
from server.rollout import config as cfg
from server.rollout.schedule import Evidence, Limits, decide, diff_bounds

pytestmark = pytest.mark.L0
LIMITS = Limits(max_escalation_delta=0.01, max_thumbs_down_delta=0.02, alpha=0.025)
PLAN = {"version": "2", "shadow": {"min_samples": 100, "min_seconds": 600},
        "steps": [{"percent": 1, "dwell_s": 3600, "min_samples": 2000}, {"percent": 5, "dwell_s": 3600, "min_samples": 2000}]}


def at(percent: float | None, **plan) -> cfg.RolloutConfig:
    data = {"stable": "1", "plan": {**PLAN, **plan}}
    data.update({"canary": {"version": "2", "percent": percent}} if percent is not None else {"shadow": "2"})
    return cfg.parse(data)


def clean(n: int = 10000) -> Evidence:
    """Canary and stable alike: 1 % escalations, 10 % thumbs down on a fifth of the answers."""
    thumbs = n // 5
    return Evidence(canary_answers=n, stable_answers=n * 20, canary_escalated=n // 100, stable_escalated=n * 20 // 100,
                    canary_up=thumbs - thumbs // 10, canary_down=thumbs // 10,
                    stable_up=20 * (thumbs - thumbs // 10), stable_down=20 * (thumbs // 10))


def test_a_file_without_a_plan_parses_and_serializes_as_before():
    data = {"model": cfg.VERSIONED_CLASSIFIER, "stable": "1", "shadow": "3", "canary": {"version": "2", "percent": 10.0}}
    config = cfg.parse(data)
    assert config.plan is None and config.phase() == ("none", None) and config.to_dict() == data
    assert decide(config, 0, 1e9, clean(), LIMITS).action == "none"


def test_the_plan_parses_defaults_and_round_trips():
    config = cfg.parse({"stable": "1", "shadow": "2", "plan": {"version": 2}})
    assert [s.percent for s in config.plan.steps] == [1, 5, 25, 100] and not config.plan.require_approval
    assert config.phase() == ("shadow", None)
    assert cfg.parse(config.to_dict()) == config
    assert at(5).phase() == ("canary", 1)


@pytest.mark.parametrize("data, words", [
    ({"stable": "1", "canary": {"version": "2", "percent": 10}, "plan": {"version": "2"}}, "not a step"),
    ({"stable": "1", "shadow": "3", "plan": {"version": "2"}}, "shadow must be 2"),
    ({"stable": "1", "shadow": "2", "plan": {"version": "2", "steps": [{"percent": 5}, {"percent": 1}]}}, "rise"),
    ({"stable": "1", "shadow": "2", "plan": {"version": "2", "steps": [{"percent": 1, "dwell_s": -1}]}}, "dwell_s"),
    ({"stable": "1", "shadow": "2", "plan": {"version": "2", "require_approval": "yes"}}, "require_approval"),
    ({"stable": "1", "shadow": "2", "plan": {"version": "2", "when": 1}}, "expected"),
    ({"stable": "1", "shadow": "1", "plan": {"version": "1"}}, "stable"),
])
def test_a_bad_plan_is_refused(data, words):
    with pytest.raises(RolloutRefused, match=words):
        cfg.parse(data)


def test_shadow_holds_for_its_samples_and_its_time_then_starts_the_first_step():
    config = at(None)
    assert decide(config, 0, 599, Evidence(shadow_samples=500), LIMITS).action == "hold"  # too early
    assert decide(config, 0, 601, Evidence(shadow_samples=99), LIMITS).action == "hold"  # too few
    d = decide(config, 0, 601, Evidence(shadow_samples=100), LIMITS)
    assert d.action == "progress" and d.to.canary == cfg.Canary("2", 1) and d.to.shadow is None and d.to.plan == config.plan


def test_enough_clean_samples_after_the_dwell_progress():
    d = decide(at(1), since=0, now=3600, ev=clean(), limits=LIMITS)
    assert d.action == "progress" and d.to.canary == cfg.Canary("2", 5), d.reason


def test_too_few_samples_hold_even_when_clean():
    d = decide(at(1), 0, 3600, clean(1000), LIMITS)  # below the step's 2000 answers
    assert d.action == "hold" and "1000/2000" in d.reason


def test_the_dwell_not_elapsed_holds():
    assert decide(at(1), 0, 3599, clean(), LIMITS).action == "hold"


def test_enough_answers_but_an_interval_too_wide_holds():
    """2000 answers, every count met, but only 40 thumbs: the thumbs-down bound cannot show +2 % at most."""
    ev = Evidence(canary_answers=2000, stable_answers=40000, canary_escalated=20, stable_escalated=400,
                  canary_up=36, canary_down=4, stable_up=7200, stable_down=800)
    d = decide(at(1), 0, 3600, ev, LIMITS)
    assert d.action == "hold" and "thumbs-down share not shown" in d.reason


def test_a_significantly_worse_thumbs_down_aborts():
    ev = clean()
    worse = Evidence(**{**ev.__dict__, "canary_up": 1500, "canary_down": 500})  # 25 % vs 10 %, 2000 thumbs
    d = decide(at(1), 0, 10, worse, LIMITS)  # abort does not wait for the dwell
    assert d.action == "abort" and "thumbs-down share" in d.reason and d.to is None


def test_a_slightly_worse_canary_neither_aborts_nor_progresses():
    ev = clean()
    worse = Evidence(**{**ev.__dict__, "canary_up": 1740, "canary_down": 260})  # 13 % vs 10 %: not significant
    assert decide(at(1), 0, 3600, worse, LIMITS).action == "hold"


def test_a_crossed_guard_aborts():
    assert decide(at(1), 0, 3600, clean(), LIMITS, breaches=["error rate +0.05 over stable > 0.02"]).action == "abort"


def test_the_last_step_promotes_or_waits_for_approval():
    d = decide(at(5), 0, 3600, clean(), LIMITS)
    assert d.action == "promote" and d.to == cfg.RolloutConfig(stable="2")
    d = decide(at(5, require_approval=True), 0, 3600, clean(), LIMITS)
    assert d.action == "await_approval" and d.to is None and "mangaassist model promote 2 --approved-by" in d.reason


def test_the_difference_bounds():
    d, lo, hi = diff_bounds(0, 0, 10, 100, 0.025)  # no canary data: from -stable's upper bound to ~1 - its lower
    assert lo < -0.15 and hi > 0.9
    d, lo, hi = diff_bounds(0, 500, 0, 500, 0.025)  # 0 events: Wilson keeps a width (Wald would give [0, 0])
    assert d == 0 and 0.005 < hi < 0.01 and lo < -0.005


class _Controller:
    """The controller's surface the schedule job uses, recording what it is asked to do."""

    def __init__(self, config: cfg.RolloutConfig, ev: Evidence) -> None:
        self.config, self.ev, self.awaiting, self.last_decision, self.done = config, ev, "", {}, []

    async def refresh_counts(self) -> None: ...

    async def reached_at(self, config) -> None:
        return None

    def evidence(self) -> Evidence:
        return self.ev

    def limits(self) -> Limits:
        return LIMITS

    def guard_breaches(self) -> list[str]:
        return []

    def advance(self, new, action, reason, *, at) -> None:
        self.done.append((action, new))
        self.config = new

    def rollback(self, reason) -> None:
        self.done.append(("rollback", reason))


async def test_the_job_waits_for_a_person_at_the_last_step_or_promotes():
    from server.rollout.schedule import RolloutSchedule

    now = [0.0]
    waiting = _Controller(at(5, require_approval=True), clean())
    job = RolloutSchedule(waiting, interval_s=1, clock=lambda: now[0])
    assert (await job.run_once()).action == "hold"  # first seen now: the dwell starts
    now[0] = 3600
    assert (await job.run_once()).action == "await_approval"
    assert waiting.done == [] and "--approved-by" in waiting.awaiting and waiting.config.canary.percent == 5
    auto = _Controller(at(5), clean())
    job = RolloutSchedule(auto, interval_s=1, clock=lambda: now[0])
    await job.run_once()
    now[0] += 3600
    assert (await job.run_once()).action == "promote" and auto.done == [("promote", cfg.RolloutConfig(stable="2"))]
    assert await job.run_once() is None  # no plan any more: the job has nothing to do
