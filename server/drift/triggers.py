"""The seven reversal triggers of the source system, as config (``settings.triggers``) evaluated against the
traffic log: every decision the platform took ships with the condition that undoes it, and this module watches
those conditions on live traffic.

``evaluate(current, reference, config)`` is pure (records in, :class:`TriggerResult` s out): the service's
periodic job (:class:`TriggerMonitor`, every ``triggers.interval_s`` over the last ``triggers.window_s``) and the
offline command (``mangaassist drift triggers``) run the same code on the same rows. Each trigger exports
``mangaassist_reversal_trigger_value{trigger}`` (the worst scope's value), ``..._crossed{trigger}`` (0/1),
``..._threshold{trigger}`` and per-scope values (tier, intent); the chart's PrometheusRule group
``mangaassist.reversal`` alerts on ``crossed`` and its dashboard has a panel per trigger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Gauge

from server.traffic.metrics import cached_for
from server.periodic import PeriodicJob

log = logging.getLogger(__name__)


from server.drift.reversal import BY_NAME, TRIGGERS, Trigger  # noqa: F401 -- the written table, re-exported


@dataclass(frozen=True)
class TriggerConfig:
    """The thresholds as evaluated: ``settings.triggers`` (the one place their defaults live) with the two that
    come from elsewhere resolved -- the p99 budget (0 = ``budgets.total_ms``) and the hallucination alert score."""

    window_s: float
    min_samples: int
    tier_quality_drop_points: float
    tier_min_feedback: int
    misclassified_escalation_rate: float
    guardrail_block_rate: float
    hallucination_rate: float
    hallucination_min_scored: int
    hallucination_alert: float
    p99_ms: float
    cost_per_turn_usd: float
    triton_usd_per_turn: float
    min_confidence: float

    @classmethod
    def from_settings(cls, settings: Any) -> "TriggerConfig":
        t = settings.triggers
        values = {name: getattr(t, name) for name in cls.__dataclass_fields__ if name != "hallucination_alert"}
        values["p99_ms"] = t.p99_ms or settings.budgets.total_ms
        values["hallucination_alert"] = settings.guardrails.hallucination_alert
        return cls(**values)

    def threshold(self, trigger: Trigger) -> float:
        return float(getattr(self, trigger.setting))


@dataclass(frozen=True)
class TriggerResult:
    name: str
    value: float | None  # None: not enough samples to judge
    threshold: float
    crossed: bool
    samples: int
    scope: str = ""  # the tier/intent the value is the worst of ("" when global)
    scopes: Mapping[str, float] = field(default_factory=dict)  # every judged scope's value
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        t = BY_NAME[self.name]
        return {"trigger": self.name, "alert": t.alert, "value": self.value, "threshold": self.threshold,
                "direction": "above" if t.above else "below", "crossed": self.crossed, "samples": self.samples,
                "scope": self.scope, "scopes": dict(self.scopes), "note": self.note, "measures": t.measures,
                "action": t.action}


# ------------------------------------------------------------------------------------------- the seven
def _result(name: str, cfg: TriggerConfig, value: float | None, samples: int, scope: str = "",
            scopes: Mapping[str, float] | None = None, note: str = "") -> TriggerResult:
    t = BY_NAME[name]
    threshold = cfg.threshold(t)
    crossed = value is not None and (value > threshold if t.above else value < threshold)
    return TriggerResult(name, None if value is None else round(float(value), 6), threshold, crossed, samples, scope,
                         {k: round(float(v), 6) for k, v in (scopes or {}).items()}, note)


def _thumbs_up_share(records: Sequence[Any], min_rated: int) -> dict[str, float]:
    up, rated = defaultdict(int), defaultdict(int)
    for r in records:
        if r.feedback in ("thumbs_up", "thumbs_down") and r.tier:
            rated[r.tier] += 1
            up[r.tier] += r.feedback == "thumbs_up"
    return {tier: up[tier] / n for tier, n in rated.items() if n >= min_rated}


def tier_quality_drop(current: Sequence[Any], reference: Sequence[Any], cfg: TriggerConfig) -> TriggerResult:
    now, before = _thumbs_up_share(current, cfg.tier_min_feedback), _thumbs_up_share(reference, cfg.tier_min_feedback)
    drops = {tier: (before[tier] - now[tier]) * 100 for tier in now if tier in before}
    rated = sum(r.feedback in ("thumbs_up", "thumbs_down") for r in current)
    if not drops:
        return _result("tier_quality_drop", cfg, None, rated, note=f"fewer than {cfg.tier_min_feedback} rated turns per tier in a window")
    worst = max(drops, key=drops.get)
    return _result("tier_quality_drop", cfg, drops[worst], rated, worst, drops)


def _answered(records: Sequence[Any], cfg: TriggerConfig, name: str) -> TriggerResult | None:
    if len(records) < cfg.min_samples:
        return _result(name, cfg, None, len(records), note=f"fewer than {cfg.min_samples} turns in the window")
    return None


def misclassified_escalation(current: Sequence[Any], cfg: TriggerConfig) -> TriggerResult:
    short = _answered(current, cfg, "misclassified_escalation")
    if short:
        return short
    by_intent: dict[str, int] = defaultdict(int)
    for r in current:
        if r.feedback == "escalated" and r.intent != "escalation":
            by_intent[r.intent or "unknown"] += 1
    n = len(current)
    return _result("misclassified_escalation", cfg, sum(by_intent.values()) / n, n,
                   max(by_intent, key=by_intent.get) if by_intent else "", {k: v / n for k, v in by_intent.items()})


def is_blocked(record: Any) -> bool:
    return bool(record.blocked) or any(a.endswith(":block") or a.endswith(":blocked") for a in record.guardrails)


def guardrail_block_rate(current: Sequence[Any], cfg: TriggerConfig) -> TriggerResult:
    short = _answered(current, cfg, "guardrail_block_rate")
    if short:
        return short
    by_guard: dict[str, int] = defaultdict(int)
    blocked = 0
    for r in current:
        if is_blocked(r):
            blocked += 1
            names = [a.split(":", 1)[0] for a in r.guardrails if a.endswith((":block", ":blocked"))] or ["blocked"]
            for name in set(names):
                by_guard[name] += 1
    n = len(current)
    return _result("guardrail_block_rate", cfg, blocked / n, n, max(by_guard, key=by_guard.get) if by_guard else "",
                   {k: v / n for k, v in by_guard.items()})


def hallucination_rate(current: Sequence[Any], cfg: TriggerConfig) -> TriggerResult:
    scored, alerts = defaultdict(int), defaultdict(int)
    for r in current:
        score = getattr(r, "hallucination", None)
        if score is None:
            continue
        scored[r.intent or "unknown"] += 1
        alerts[r.intent or "unknown"] += score >= cfg.hallucination_alert
    rates = {i: alerts[i] / n for i, n in scored.items() if n >= cfg.hallucination_min_scored}
    total = sum(scored.values())
    if not rates:
        return _result("hallucination_rate", cfg, None, total,
                       note=f"no intent with {cfg.hallucination_min_scored} scored answers (template answers are not scored)")
    worst = max(rates, key=rates.get)
    return _result("hallucination_rate", cfg, rates[worst], total, worst, rates)


def path_ms(record: Any) -> float | None:
    """The non-LLM path's time: every stage but ``answer``; classify and embed run concurrently (the longer counts)."""
    t = {k: v for k, v in record.timings_ms.items() if k != "answer"}
    if not t:
        return None
    total = sum(t.values())
    if "classify" in t and "embed" in t:
        total -= min(t["classify"], t["embed"])
    return total


def latency_p99(current: Sequence[Any], cfg: TriggerConfig) -> TriggerResult:
    short = _answered(current, cfg, "latency_p99")
    if short:
        return short
    ms = [v for v in (path_ms(r) for r in current) if v is not None]
    if not ms:
        return _result("latency_p99", cfg, None, 0, note="no stage timings")
    return _result("latency_p99", cfg, float(np.percentile(ms, 99)), len(ms))


def turn_cost(record: Any, triton_usd_per_turn: float) -> float:
    triton = triton_usd_per_turn if (not record.rule_decided or record.sketch) else 0.0
    return float(record.cost_usd or 0.0) + triton


def cost_per_turn(current: Sequence[Any], cfg: TriggerConfig) -> TriggerResult:
    short = _answered(current, cfg, "cost_per_turn")
    if short:
        return short
    by_tier, count = defaultdict(float), defaultdict(int)
    for r in current:
        by_tier[r.tier or "unknown"] += turn_cost(r, cfg.triton_usd_per_turn)
        count[r.tier or "unknown"] += 1
    total = sum(by_tier.values())
    scopes = {tier: by_tier[tier] / count[tier] for tier in by_tier}
    return _result("cost_per_turn", cfg, total / len(current), len(current),
                   max(by_tier, key=by_tier.get) if by_tier else "", scopes)


def classifier_confidence(current: Sequence[Any], cfg: TriggerConfig) -> TriggerResult:
    model = [r for r in current if not r.rule_decided and r.intent and "classifier_unavailable" not in r.degraded]
    if len(model) < cfg.min_samples:
        return _result("classifier_confidence", cfg, None, len(model),
                       note=f"fewer than {cfg.min_samples} model-decided turns in the window")
    by_intent: dict[str, list[float]] = defaultdict(list)
    for r in model:
        by_intent[r.intent].append(r.confidence)
    scopes = {i: float(np.mean(v)) for i, v in by_intent.items()}
    return _result("classifier_confidence", cfg, float(np.mean([r.confidence for r in model])), len(model),
                   min(scopes, key=scopes.get), scopes)


def evaluate(current: Sequence[Any], reference: Sequence[Any], cfg: TriggerConfig) -> dict[str, TriggerResult]:
    """Every trigger over the current window (``reference``: the window before it, for the tier-quality drop)."""
    results = [
        tier_quality_drop(current, reference, cfg),
        misclassified_escalation(current, cfg),
        guardrail_block_rate(current, cfg),
        hallucination_rate(current, cfg),
        latency_p99(current, cfg),
        cost_per_turn(current, cfg),
        classifier_confidence(current, cfg),
    ]
    return {r.name: r for r in results}


def markdown(results: Mapping[str, TriggerResult], windows: Mapping[str, Any] | None = None) -> str:
    lines = ["# Reversal triggers (`mangaassist drift triggers`)", ""]
    if windows:
        lines += [f"Current window {windows['current'][0]} .. {windows['current'][1]}; reference {windows['reference'][0]} .. "
                  f"{windows['reference'][1]}.", ""]
    lines += ["| trigger | value | threshold | crossed | samples | worst scope | alert |", "|---|---|---|---|---|---|---|"]
    for r in results.values():
        t = BY_NAME[r.name]
        value = "insufficient" if r.value is None else f"{r.value:.4g}"
        lines.append(f"| {r.name} | {value} | {'>' if t.above else '<'} {r.threshold:g} | {'**yes**' if r.crossed else 'no'} | "
                     f"{r.samples} | {r.scope} | {t.alert} |")
    lines += ["", "Reversal actions:"] + [f"- **{t.name}** ({t.measures}): {t.action}." for t in TRIGGERS]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------- metrics + job
class TriggerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.value = Gauge("mangaassist_reversal_trigger_value", "A reversal trigger's value over the last window (worst scope)",
                           ["trigger"], registry=r)
        self.crossed = Gauge("mangaassist_reversal_trigger_crossed", "1 while a reversal trigger is past its threshold",
                             ["trigger"], registry=r)
        self.threshold = Gauge("mangaassist_reversal_trigger_threshold", "A reversal trigger's threshold (settings.triggers)",
                               ["trigger"], registry=r)
        self.samples = Gauge("mangaassist_reversal_trigger_samples", "Turns (or rated/scored turns) a trigger judged",
                             ["trigger"], registry=r)
        self.scope_value = Gauge("mangaassist_reversal_trigger_scope_value", "A trigger's value per tier/intent/guardrail",
                                 ["trigger", "scope"], registry=r)
        self.last_run = Gauge("mangaassist_reversal_trigger_last_run_timestamp_seconds", "When the trigger job last finished",
                              registry=r)


def metrics_for(metrics: Any = None) -> TriggerMetrics:
    return cached_for(TriggerMetrics, metrics)


def export(m: TriggerMetrics, results: Mapping[str, TriggerResult]) -> None:
    m.scope_value.clear()  # a tier/intent gone from this window must not keep its last value
    for r in results.values():
        m.threshold.labels(r.name).set(r.threshold)
        m.samples.labels(r.name).set(r.samples)
        m.crossed.labels(r.name).set(1 if r.crossed else 0)
        if r.value is not None:  # an insufficient window keeps no stale value: the gauge reads NaN
            m.value.labels(r.name).set(r.value)
        else:
            m.value.labels(r.name).set(float("nan"))
        for scope, v in r.scopes.items():
            m.scope_value.labels(r.name, scope).set(v)
    m.last_run.set(time.time())


class TriggerMonitor(PeriodicJob):
    """Every ``triggers.interval_s``: the last ``window_s`` of the traffic log (and the window before it) ->
    :func:`evaluate` -> gauges. Store reads and numpy work run in a worker thread."""

    def __init__(self, settings: Any, store: Any, metrics: Any, *, clock: Callable[[], float] = time.time,
                 max_samples: int = 50_000) -> None:
        self.store = store
        self.config = TriggerConfig.from_settings(settings)
        self.metrics = metrics_for(metrics)
        self.interval_s, self.window_s, self.max_samples = settings.triggers.interval_s, settings.triggers.window_s, max_samples
        self.clock = clock
        self.last: dict[str, TriggerResult] | None = None
        #: the measured Triton cost of a model-path turn (the cost job's last interval), or None: the setting's
        self.triton_usd_per_turn: Callable[[], float | None] = lambda: None

    async def run_once(self) -> dict[str, TriggerResult]:
        results = await asyncio.to_thread(self._compute, self.clock())
        export(self.metrics, results)
        self.last = results
        crossed = [r for r in results.values() if r.crossed]
        for r in crossed:
            log.warning("reversal trigger %s crossed: %s (threshold %s, %s) -> %s", r.name, r.value, r.threshold, r.scope or "all",
                        BY_NAME[r.name].action)
        return results

    def _compute(self, now: float) -> dict[str, TriggerResult]:
        w = self.window_s
        reference = self.store.records(now - 2 * w, now - w, limit=self.max_samples, sample=True)
        current = self.store.records(now - w, now, limit=self.max_samples, sample=True)
        measured = self.triton_usd_per_turn()
        config = self.config if measured is None else replace(self.config, triton_usd_per_turn=measured)
        return evaluate(current, reference, config)
