"""The chart deploys the cluster's shared state (setting ``state.*``, issue 24): more than one ensemble replica (or
the HPA) with state kept in each process fails to render, naming the value to set; the default release runs an
in-chart Redis + PostgreSQL and points every pod at them; values-production.yaml points at managed ones through
Secrets. Rendered with the real Helm engine and loaded through the real settings loader."""

from __future__ import annotations

import re

import helm_python
import pytest

from tests.deploy.chart_view import RELEASE
from tests.deploy.test_chart_settings import _values, ensemble_view, load_like_the_process

pytestmark = pytest.mark.L0

NAMESPACE = "shop"


@pytest.fixture(scope="module")
def chart():
    from tests.deploy.chart_view import CHART

    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


MEMORY_WITH_REPLICAS = {
    "two replicas": ({"state": {"backend": "memory"}, "ensemble": {"replicas": 2, "autoscaling": {"enabled": False}}},
                     "ensemble.replicas is 2"),
    "the hpa": ({"state": {"backend": "memory"}, "ensemble": {"replicas": 1, "autoscaling": {"enabled": True}}},
                "ensemble.autoscaling.enabled is true"),
}


@pytest.mark.parametrize("overrides,why", MEMORY_WITH_REPLICAS.values(), ids=MEMORY_WITH_REPLICAS.keys())
def test_in_process_state_with_several_replicas_does_not_render(chart, overrides, why):
    with pytest.raises(helm_python.HelmRenderError, match=re.escape(why)) as refused:
        chart.render(overrides, name=RELEASE, namespace=NAMESPACE)
    assert "set state.backend: redis" in str(refused.value)


def test_in_process_state_renders_for_one_replica_without_stores(chart, tmp_path, caplog):
    values = {"state": {"backend": "memory"}, "ensemble": {"replicas": 1, "autoscaling": {"enabled": False}}}
    rendered, view = ensemble_view(chart, values)
    settings, complaints = load_like_the_process(view, tmp_path, caplog)
    assert complaints == [] and settings.state.backend == "memory"
    assert not rendered.of_kind("StatefulSet") and "PGPASSWORD" not in view.env


@pytest.mark.parametrize("overrides,message", [
    ({"state": {"redis": {"deploy": False}}}, "state.redis.url (or state.redis.existingSecret) is required"),
    ({"state": {"postgres": {"deploy": False}}}, "state.postgres.dsn is required"),
])
def test_external_stores_need_their_address(chart, overrides, message):
    with pytest.raises(helm_python.HelmRenderError, match=re.escape(message)):
        chart.render(overrides, name=RELEASE, namespace=NAMESPACE)


def test_the_default_release_runs_and_uses_in_chart_redis_and_postgres(chart, tmp_path, caplog):
    rendered, view = ensemble_view(chart, {})
    settings, complaints = load_like_the_process(view, tmp_path, caplog)
    assert complaints == []
    state = settings.state
    assert state.backend == "redis" and state.shared
    redis_service = rendered.get("Service", f"{RELEASE}-redis")
    pg_service = rendered.get("Service", f"{RELEASE}-postgres")
    assert state.redis_url == f"redis://{RELEASE}-redis:{redis_service['spec']['ports'][0]['port']}/0"
    assert f"host={RELEASE}-postgres port={pg_service['spec']['ports'][0]['port']}" in state.postgres_dsn
    assert "password" not in state.postgres_dsn
    # PGPASSWORD (libpq) is the in-chart server's POSTGRES_PASSWORD: the same generated Secret
    secret = rendered.get("Secret", f"{RELEASE}-postgres")
    pg = rendered.get("StatefulSet", f"{RELEASE}-postgres")["spec"]["template"]["spec"]["containers"][0]
    server_password = next(e for e in pg["env"] if e["name"] == "POSTGRES_PASSWORD")["valueFrom"]["secretKeyRef"]
    assert server_password["name"] == secret["metadata"]["name"] and len(view.env["PGPASSWORD"]) >= 16
    redis = rendered.get("StatefulSet", f"{RELEASE}-redis")["spec"]["template"]["spec"]["containers"][0]
    assert "--appendonly" in redis["args"] and redis["args"][redis["args"].index("--appendonly") + 1] == "yes"
    # the ensemble may reach both (its NetworkPolicy egress)
    policy = rendered.get("NetworkPolicy", f"{RELEASE}-ensemble")
    reached = {peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
               for rule in policy["spec"]["egress"] for peer in rule.get("to", []) if "podSelector" in peer}
    assert {"redis", "postgres"} <= reached


def test_production_points_every_pod_at_managed_stores_through_secrets(chart, tmp_path, caplog):
    rendered, view = ensemble_view(chart, _values("production"))
    settings, complaints = load_like_the_process(view, tmp_path, caplog)
    assert complaints == []
    assert rendered.values["ensemble"]["autoscaling"]["enabled"] and settings.state.backend == "redis"
    assert settings.state.redis_url == "redis://:secret@redis.prod.internal:6379/0"  # the Secret wins
    assert "rds.amazonaws.com" in settings.state.postgres_dsn and view.env["PGPASSWORD"] == "pg-secret"
    assert not rendered.of_kind("StatefulSet")  # no in-chart single instances

