"""The chart's drift alerts (model lifecycle II): rendered from the production values, one per drift signal,
each on the gauge the service's drift job exports, and the service settings they name exist."""

from __future__ import annotations

import helm_python  # pinned in pyproject.toml: a missing one is an error, not a skip
import pytest

from server.drift.metrics import DriftMetrics
from server.settings import Settings
from tests.deploy.chart_view import CHART, RELEASE, production_values, render


@pytest.fixture(scope="module")
def alerts():
    with helm_python.Chart.load(CHART) as chart:
        rendered = render(chart, production_values())
    (rule,) = [m for m in rendered.of_kind("PrometheusRule") if m["metadata"]["name"] == RELEASE]
    (group,) = [g for g in rule["spec"]["groups"] if g["name"] == "mangaassist.drift"]
    return {r["alert"]: r for r in group["rules"]}


def test_one_alert_per_drift_signal_on_the_exported_gauge(alerts):
    exported = {m.name for m in DriftMetrics().registry.collect()}
    for signal, name in [("intent_share", "MangaAssistDriftIntentShare"), ("confidence", "MangaAssistDriftConfidence"),
                         ("embedding", "MangaAssistDriftEmbedding"), ("new_patterns", "MangaAssistDriftNewPatterns")]:
        expr = alerts[name]["expr"]
        assert "mangaassist_drift_alarm" in exported and "mangaassist_drift_alarm{" in expr and f'signal="{signal}"' in expr
        assert 'namespace="shop"' in expr and alerts[name]["labels"]["severity"] in {"info", "warning", "critical"}
    assert 'cause="model_problem"' in alerts["MangaAssistModelProblem"]["expr"]
    assert "mangaassist_traffic_dropped_total" in alerts["MangaAssistTrafficLogDropping"]["expr"]


def test_the_thresholds_the_alerts_describe_are_settings(alerts):
    d = Settings().drift
    assert (d.intent_share_points, d.min_confidence) == (5.0, 0.85)
    assert "drift.intent_share_points" in alerts["MangaAssistDriftIntentShare"]["annotations"]["summary"]


def test_the_pod_logs_traffic_to_its_writable_tmp_bounded_to_fit():
    import yaml

    with helm_python.Chart.load(CHART) as chart:
        rendered = render(chart, production_values())
    (cm,) = [m for m in rendered.of_kind("ConfigMap") if m["metadata"]["name"].endswith("-ensemble-config")]
    traffic = yaml.safe_load(cm["data"]["config.yaml"])["traffic"]
    assert traffic["sqlite_path"].startswith("/tmp/")  # the emptyDir; the root filesystem is read-only
    (deployment,) = [d for d in rendered.of_kind("Deployment") if d["metadata"]["name"].endswith("-ensemble")]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if any(m["mountPath"] == "/tmp" for m in c.get("volumeMounts", []))]
    assert container["securityContext"]["readOnlyRootFilesystem"]
    size_limit = next(v["emptyDir"]["sizeLimit"] for v in spec["volumes"] if "emptyDir" in v)
    assert traffic["max_rows"] * 1024 < int(size_limit.rstrip("Mi")) * 2**20  # ~1 KB a row fits the emptyDir
