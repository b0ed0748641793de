"""The chart's reversal-trigger alerts and dashboard panels (model lifecycle II): rendered from the production values,
every trigger the service evaluates (server/drift/triggers.py TRIGGERS) has its alert and its panel, and every
metric their expressions read is one the service exports."""

from __future__ import annotations

import json
import re

import helm_python  # pinned in pyproject.toml: a missing one is an error, not a skip
import pytest

from server.drift.triggers import TRIGGERS, TriggerMetrics
from server.settings import Settings
from tests.deploy.chart_view import CHART, NAMESPACE, RELEASE, production_values, render

METRIC = re.compile(r"\b(mangaassist_[a-z0-9_]+)\{")


@pytest.fixture(scope="module")
def rendered():
    with helm_python.Chart.load(CHART) as chart:
        return render(chart, production_values())


@pytest.fixture(scope="module")
def alerts(rendered):
    (rule,) = [m for m in rendered.of_kind("PrometheusRule") if m["metadata"]["name"] == RELEASE]
    (group,) = [g for g in rule["spec"]["groups"] if g["name"] == "mangaassist.reversal"]
    return {r["alert"]: r for r in group["rules"]}


@pytest.fixture(scope="module")
def panels(rendered):
    (cm,) = [m for m in rendered.of_kind("ConfigMap") if m["metadata"]["name"].endswith("-dashboard")]
    return json.loads(cm["data"]["mangaassist.json"])["panels"]


def exported() -> set[str]:
    return {m.name for m in TriggerMetrics().registry.collect()}


def test_every_trigger_has_one_alert_on_its_crossed_gauge(alerts):
    assert set(alerts) == {t.alert for t in TRIGGERS}
    for t in TRIGGERS:
        expr = alerts[t.alert]["expr"]
        assert "mangaassist_reversal_trigger_crossed{" in expr and f'trigger="{t.name}"' in expr
        assert f'namespace="{NAMESPACE}"' in expr and alerts[t.alert]["labels"]["trigger"] == t.name
        assert f"triggers.{t.setting}" in alerts[t.alert]["annotations"]["summary"] or t.name == "latency_p99"
        assert hasattr(Settings().triggers, t.setting)


def test_every_trigger_has_a_dashboard_panel_with_value_and_threshold(panels):
    by_title = {p["title"]: p for p in panels}
    for t in TRIGGERS:
        panel = by_title[f"Reversal trigger: {t.name}"]
        exprs = [target["expr"] for target in panel["targets"]]
        assert any("mangaassist_reversal_trigger_value{" in e and f'trigger="{t.name}"' in e for e in exprs)
        assert any("mangaassist_reversal_trigger_threshold{" in e for e in exprs)
    assert len({p["id"] for p in panels}) == len(panels)


def test_the_rule_and_panel_expressions_read_metrics_the_service_exports(alerts, panels):
    names = exported()
    used = {m for a in alerts.values() for m in METRIC.findall(a["expr"])}
    used |= {m for p in panels if p["title"].startswith("Reversal trigger") for t in p["targets"] for m in METRIC.findall(t["expr"])}
    assert used and used <= names, used - names
