"""The seven reversal triggers (server/drift/triggers.py): scripted traffic in a real traffic store (SQLite file,
and the hallucination score attached to its rows the way the service does it) crosses each trigger and fires its
gauge; normal traffic keeps all seven quiet; the offline command reads the same rows to the same verdicts."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest
from prometheus_client import CollectorRegistry

from model_repository.lifecycle import drift as drift_cli
from server.drift.triggers import TRIGGERS, TriggerMetrics, TriggerMonitor
from server.intents import INTENT_LABELS
from server.settings import Settings
from server.traffic.record import TrafficRecord
from server.traffic.store import SQLiteTrafficStore, write_all

pytestmark = pytest.mark.L0

HOUR = 3600.0
N = 960  # turns per window (40 small-tier answers per intent: the hallucination rate judges each)


def normal_turn(i: int, t: float, rng: random.Random) -> TrafficRecord:
    """A healthy turn: template or small tier, confident classifier, fast path, cheap, mostly thumbs-up."""
    rule = i % 5 == 0
    tier = "small" if i % 3 == 0 else "template"
    feedback = ("thumbs_down" if (i // 4) % 10 == 0 else "thumbs_up") if i % 4 == 0 else ""  # 90% up
    if i % 25 == 7:
        feedback = "escalated"  # 4% escalations, all on the escalation intent (the classifier saw them right)
    return TrafficRecord(
        ts=t, request_id=f"r{t:.3f}-{i}", intent="escalation" if feedback == "escalated" else INTENT_LABELS[i % 8],
        confidence=1.0 if rule else 0.93 + 0.04 * rng.random(), rule_decided=rule, tier=tier,
        timings_ms={"rules": 0.1, "classify": 20 + 30 * rng.random(), "embed": 18 + 20 * rng.random(), "retrieve": 2.0,
                    "answer": 900.0 if tier == "small" else 0.1},
        guardrails=("prompt_injection:blocked",) if i % 50 == 0 else (), blocked=i % 50 == 0,
        sketch=(0.1,) * 16, cost_usd=0.0004 if tier == "small" else 0.0, feedback=feedback)


def window(start: float, rng: random.Random, tag: str = "") -> list[TrafficRecord]:
    return [replace(normal_turn(i, start + i * HOUR / N, rng), request_id=f"{tag}{i}") for i in range(N)]


def scores_for(records) -> dict[str, float]:
    """The async scorer's verdicts on the small tier's answers: low (grounded) by default."""
    return {r.request_id: 0.05 for r in records if r.tier == "small"}


def cross(name: str, current: list[TrafficRecord], scores: dict[str, float]) -> list[TrafficRecord]:
    """Script the current window so that exactly ``name`` crosses."""
    out = []
    for i, r in enumerate(current):
        if name == "tier_quality_drop" and r.tier == "small" and r.feedback == "thumbs_up" and (i // 12) % 4 == 0:
            r = replace(r, feedback="thumbs_down")  # the small tier's thumbs-up share falls ~20 points
        elif name == "misclassified_escalation" and i % 20 == 1:
            r = replace(r, feedback="escalated")  # +5%: escalated on a product/policy intent
        elif name == "guardrail_block_rate" and i % 25 == 3:
            r = replace(r, blocked=True, guardrails=("prompt_injection:blocked",))  # 2% -> 6%
        elif name == "hallucination_rate" and r.tier == "small" and r.intent == "recommendation":
            scores[r.request_id] = 0.8 if (i // 24) % 4 == 0 else 0.1  # recommendation: a quarter of its answers fabricated
        elif name == "latency_p99" and i % 40 == 0:
            r = replace(r, timings_ms={**r.timings_ms, "retrieve": 450.0})  # 2.5% of turns past the 300 ms budget
        elif name == "cost_per_turn" and r.tier == "small":
            r = replace(r, tier="large", cost_usd=0.009)  # a route to the large tier
        elif name == "classifier_confidence" and not r.rule_decided:
            r = replace(r, confidence=0.80 + 0.05 * (i % 3) / 2)
        out.append(r)
    return out


def load(tmp_path, current, reference, scores) -> SQLiteTrafficStore:
    store = SQLiteTrafficStore(str(tmp_path / "traffic.db"))
    write_all(store, reference + current)
    for request_id, score in scores.items():
        assert store.set_hallucination(request_id, score)  # what TrafficRecorder.hallucination_later does
    return store


def crossed(registry: CollectorRegistry) -> dict[str, float]:
    return {t.name: registry.get_sample_value("mangaassist_reversal_trigger_crossed", {"trigger": t.name}) for t in TRIGGERS}


async def run(tmp_path, name: str | None) -> tuple[CollectorRegistry, dict]:
    rng = random.Random(7)
    reference, current = window(0.0, rng, "a"), window(HOUR, rng, "b")
    scores = scores_for(reference) | scores_for(current)
    if name is not None:
        current = cross(name, current, scores)
    store = load(tmp_path, current, reference, scores)
    registry = CollectorRegistry()
    monitor = TriggerMonitor(Settings(), store, TriggerMetrics(registry), clock=lambda: 2 * HOUR)
    results = await monitor.run_once()
    return registry, results


def test_exactly_seven_triggers_each_with_a_threshold_setting_and_an_action():
    t = Settings().triggers
    assert len(TRIGGERS) == 7 and len({x.alert for x in TRIGGERS}) == 7
    for trigger in TRIGGERS:
        assert hasattr(t, trigger.setting) and len(trigger.action) > 40
    assert (t.misclassified_escalation_rate, t.guardrail_block_rate, t.hallucination_rate, t.min_confidence) == (0.03, 0.05, 0.03, 0.85)


async def test_normal_traffic_keeps_every_trigger_quiet(tmp_path):
    registry, results = await run(tmp_path, None)
    assert crossed(registry) == {t.name: 0.0 for t in TRIGGERS}
    assert all(r.value is not None for r in results.values()), {k: r.note for k, r in results.items() if r.value is None}


@pytest.mark.parametrize("name", [t.name for t in TRIGGERS])
async def test_scripted_traffic_crossing_a_trigger_fires_its_gauge_only(tmp_path, name):
    registry, results = await run(tmp_path, name)
    assert crossed(registry) == {t.name: float(t.name == name) for t in TRIGGERS}
    r = results[name]
    assert registry.get_sample_value("mangaassist_reversal_trigger_value", {"trigger": name}) == pytest.approx(r.value)
    if name == "hallucination_rate":
        assert r.scope == "recommendation"
    if name == "tier_quality_drop":
        assert r.scope == "small"


async def test_a_thin_window_judges_nothing(tmp_path):
    store = SQLiteTrafficStore(str(tmp_path / "thin.db"))
    write_all(store, [replace(r, blocked=True) for r in window(HOUR, random.Random(1))[:50]])
    registry = CollectorRegistry()
    results = await TriggerMonitor(Settings(), store, TriggerMetrics(registry), clock=lambda: 2 * HOUR).run_once()
    assert not any(r.crossed for r in results.values()) and results["guardrail_block_rate"].value is None


async def test_a_scope_gone_from_the_window_drops_its_gauge(tmp_path):
    rng = random.Random(3)
    current = [replace(r, tier="large") if r.tier == "small" else r for r in window(HOUR, rng, "b")]
    store = load(tmp_path, current, window(0.0, rng, "a"), {})
    registry = CollectorRegistry()
    monitor = TriggerMonitor(Settings(), store, TriggerMetrics(registry), clock=lambda: 2 * HOUR)
    await monitor.run_once()
    labels = {"trigger": "cost_per_turn", "scope": "large"}
    assert registry.get_sample_value("mangaassist_reversal_trigger_scope_value", labels) > 0
    monitor.clock = lambda: 3 * HOUR  # the next hour has no traffic at all
    await monitor.run_once()
    assert registry.get_sample_value("mangaassist_reversal_trigger_scope_value", labels) is None


def test_the_offline_command_reads_the_same_verdicts_from_the_log(tmp_path, capsys):
    rng = random.Random(7)
    reference, current = window(0.0, rng, "a"), window(HOUR, rng, "b")
    scores = scores_for(reference) | scores_for(current)
    load(tmp_path, cross("guardrail_block_rate", current, scores), reference, scores).close()
    rc = drift_cli.main(["triggers", "--sqlite", str(tmp_path / "traffic.db"), "--now", str(2 * HOUR), "--out",
                         str(tmp_path / "out"), "--fail-on-crossed"])
    data = json.loads((tmp_path / "out" / "triggers.json").read_text())
    assert rc == 1 and [t["trigger"] for t in data["triggers"] if t["crossed"]] == ["guardrail_block_rate"]
    assert "MangaAssistReversalGuardrailBlockRate" in (tmp_path / "out" / "triggers.md").read_text()


def test_an_older_store_gains_the_hallucination_column(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE traffic (id INTEGER PRIMARY KEY AUTOINCREMENT, ts DOUBLE PRECISION NOT NULL, request_id text)")
    db.commit()
    db.close()
    store = SQLiteTrafficStore(str(path))
    write_all(store, window(0.0, random.Random(2))[:3])
    assert store.set_hallucination("0", 0.9) and store.records()[0].hallucination == 0.9


async def test_cost_per_turn_uses_the_measured_triton_cost_when_the_service_measures_it(tmp_path):
    from server.traffic.cost import TritonCost, TritonCostMonitor
    from server.traffic.monitors import start_monitors

    rng = random.Random(7)
    store = load(tmp_path, window(HOUR, rng, "b"), window(0.0, rng, "a"), {})

    class Traffic:
        pass

    Traffic.store = store
    settings = Settings().replace(drift={"enabled": False}, costs={"triton_metrics_url": "http://127.0.0.1:9/metrics", "interval_s": 3600},
                                  triggers={"interval_s": 3600})
    jobs = start_monitors(settings, Traffic(), None, CollectorRegistry())
    for job in jobs:
        await job.stop()
    triggers, cost = (next(j for j in jobs if isinstance(j, cls)) for cls in (TriggerMonitor, TritonCostMonitor))
    triggers.clock = lambda: 2 * HOUR
    assert not (await triggers.run_once())["cost_per_turn"].crossed  # nothing measured yet: the setting's $7.1e-6
    t = settings.triton  # a measured interval where the model path costs $0.001 a call per model
    cost.last = TritonCost(60.0, 0.5, {t.classifier_model: 1e-3, t.embedder_model: 1e-3, t.adapter_model: 1e-3, "reranker": 1.0}, {}, {})
    result = (await triggers.run_once())["cost_per_turn"]
    assert result.crossed and result.value == pytest.approx((0.0004 * 320 + 0.003 * 960) / 960, rel=0.05)
