"""The chart carries the rollout: the rollout file as a ConfigMap, mounted where the service's settings say it
reads it, parsed by the service's own parser, re-read by the real RolloutController when the kubelet swaps a
changed ConfigMap in (the ``..data`` symlink dance) -- with no pod rolled -- and Triton's model control that
lets a new version load without a restart (explicit mode, the repository API behind the admin key)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from server.rollout import config as rollout_config
from server.rollout.controller import RolloutController
from server.rollout.feedback import FeedbackStore
from server.settings import load_settings
from tests.deploy.chart_view import CHART, NAMESPACE, RELEASE, render

pytestmark = pytest.mark.L0

ENSEMBLE = f"Deployment/{RELEASE}-ensemble"
SECRETS = {f"{RELEASE}-ensemble-auth": {"tokens": "tok-a"}}
ROLLOUT = {"rollout": {"enabled": True, "registry": {"existingClaim": "lifecycle"},
                       "config": {"stable": "2", "shadow": "4", "canary": {"version": "3", "percent": 10}}}}


@pytest.fixture(scope="module")
def chart():
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


def _settings(view: Any, root: Path) -> Any:
    view.write_files(root)
    env = {k: view.remap(v, root, tuple(view.mounts)) for k, v in view.env.items()}
    return load_settings(env=env)


def test_rollout_file_is_mounted_where_the_service_reads_it(chart, tmp_path):
    rendered = render(chart, ROLLOUT)
    view = rendered.container_view(ENSEMBLE, "ensemble", SECRETS)
    settings = _settings(view, tmp_path)
    r, values = settings.rollout, rendered.values["rollout"]
    assert r.file == f"{values['mountPath']}/rollout.yaml" and r.poll_s == values["pollSeconds"]
    assert r.lifecycle_dir == values["registry"]["mountPath"] and r.default_version == "1"
    # the file the service names is in the pod (the rollout ConfigMap), and the service's parser takes it
    assert r.file.encode() in {p.encode() for p in view.files}
    parsed = rollout_config.read(tmp_path / r.file.lstrip("/"))
    assert parsed == rollout_config.RolloutConfig(stable="2", shadow="4", canary=rollout_config.Canary("3", 10.0))
    # a directory mount (a subPath mount never sees a ConfigMap change), read-only; the registry read-only too
    mounts = {m["mountPath"]: m for m in view.container["volumeMounts"]}
    assert "subPath" not in mounts[values["mountPath"]] and mounts[values["mountPath"]]["readOnly"] is True
    assert mounts[r.lifecycle_dir]["readOnly"] is True
    volumes = {v["name"]: v for v in view.pod_spec["volumes"]}
    assert volumes[mounts[values["mountPath"]]["name"]]["configMap"]["name"] == f"{RELEASE}-ensemble-rollout"
    assert volumes[mounts[r.lifecycle_dir]["name"]]["persistentVolumeClaim"] == {"claimName": "lifecycle", "readOnly": True}


def test_without_rollout_the_service_has_none(chart, tmp_path):
    rendered = render(chart, {})
    assert rendered.maybe("ConfigMap", f"{RELEASE}-ensemble-rollout") is None
    settings = _settings(rendered.container_view(ENSEMBLE, "ensemble", SECRETS), tmp_path)
    assert settings.rollout.file == ""


def test_changing_the_rollout_rolls_no_pod(chart):
    """Only the rollout ConfigMap changes: the pods keep running and reload the file (a config change, by
    contrast, changes the pod template's checksum and rolls them)."""
    a = render(chart, ROLLOUT)
    b = render(chart, {"rollout": {**ROLLOUT["rollout"], "config": {"stable": "3"}}})
    assert a.get("Deployment", f"{RELEASE}-ensemble") == b.get("Deployment", f"{RELEASE}-ensemble")
    cm = f"{RELEASE}-ensemble-rollout"
    assert a.get("ConfigMap", cm) != b.get("ConfigMap", cm)
    c = render(chart, {**ROLLOUT, "ensemble": {"config": {"server": {"max_concurrency": 8}}}})
    assert a.get("Deployment", f"{RELEASE}-ensemble") != c.get("Deployment", f"{RELEASE}-ensemble")


def _kubelet_write(mount: Path, files: dict[str, bytes], stamp: str) -> None:
    """What the kubelet does on a ConfigMap (re)sync: a new timestamped directory, ``..data`` swapped to it with
    one rename, and ``<key> -> ..data/<key>`` links."""
    new = mount / f"..{stamp}"
    new.mkdir(parents=True)
    for key, content in files.items():
        (new / key).write_bytes(content)
    tmp = mount / "..data_tmp"
    tmp.symlink_to(new.name)
    os.replace(tmp, mount / "..data")
    for key in files:
        if not (mount / key).is_symlink():
            (mount / key).symlink_to(f"..data/{key}")


def _rollout_file(chart, config: dict[str, Any]) -> bytes:
    cm = render(chart, {"rollout": {**ROLLOUT["rollout"], "config": config}}).get("ConfigMap", f"{RELEASE}-ensemble-rollout")
    return cm["data"]["rollout.yaml"].encode()


def test_a_changed_configmap_is_applied_by_the_running_service(chart, tmp_path, caplog, monkeypatch):
    """The real RolloutController on the kubelet's layout: the first file applies, a ConfigMap update swapped in
    applies without a restart, a refused one (a version Triton does not serve) leaves the running rollout, and an
    automatic rollback on the read-only mount holds in memory until the ConfigMap changes."""
    mount = tmp_path / "etc" / "mangaassist" / "rollout"
    _kubelet_write(mount, {"rollout.yaml": _rollout_file(chart, {"stable": "2"})}, "2026_11_30_01")
    settings = load_settings(env={}).replace(rollout={"file": str(mount / "rollout.yaml"), "poll_s": 0.05})
    served = {"2", "3", "4"}

    async def version_ready(model: str, version: str) -> bool:
        return version in served

    async def scenario() -> None:
        from prometheus_client import CollectorRegistry

        controller = RolloutController(settings.rollout, backend=None, feedback=FeedbackStore(),
                                       version_ready=version_ready, gate_check=lambda m, v: None,
                                       registry=CollectorRegistry())
        await controller.start()
        try:
            assert controller.config == rollout_config.RolloutConfig(stable="2")
            _kubelet_write(mount, {"rollout.yaml": _rollout_file(chart, {"stable": "2", "canary": {"version": "3", "percent": 10}})},
                           "2026_11_30_02")
            await _until(lambda: controller.config.canary is not None)
            assert controller.config.canary == rollout_config.Canary("3", 10.0)
            _kubelet_write(mount, {"rollout.yaml": _rollout_file(chart, {"stable": "2", "canary": {"version": "9", "percent": 10}})},
                           "2026_11_30_03")
            await _until(lambda: controller.last_error != "")
            assert "unknown to Triton" in controller.last_error and controller.config.canary.version == "3"
            # an automatic rollback cannot rewrite the read-only mount: held in memory, not undone by the watcher
            controller.rollback("guard: thumbs-down")
            assert any("could not rewrite" in r.getMessage() for r in caplog.records)
            await asyncio.sleep(0.3)  # several polls
            assert controller.config.canary is None and controller.config.stable == "2"
            # ... until the ConfigMap changes (the operator writes the rolled-back rollout, or a new one)
            _kubelet_write(mount, {"rollout.yaml": _rollout_file(chart, {"stable": "2", "shadow": "3"})}, "2026_11_30_04")
            await _until(lambda: controller.config.shadow == "3")
        finally:
            controller.stop()

    def read_only(path: Any, config: Any) -> None:
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr(rollout_config, "write", read_only)  # the ConfigMap mount (root ignores chmod here)
    with caplog.at_level(logging.ERROR, logger="server.rollout.controller"):
        asyncio.run(scenario())


async def _until(predicate, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


# ----------------------------------------------------------------------------- Triton's model control
def test_triton_loads_new_versions_without_a_restart_by_default(chart):
    rendered = render(chart, {})
    args = next(c for c in rendered.get("Deployment", f"{RELEASE}-triton")["spec"]["template"]["spec"]["containers"]
                if c["name"] == "tritonserver")["args"]
    assert "--model-control-mode=explicit" in args and "--load-model=*" in args and "--strict-readiness=false" in args
    restricted = next(a for a in args if a.startswith("--grpc-restricted-protocol="))
    assert "model-repository" in restricted.split("=", 1)[1].split(":")[0].split(",")
    none = render(chart, {"triton": {"modelControl": {"mode": "none"}}}).get("Deployment", f"{RELEASE}-triton")
    args = none["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--model-control-mode=none" in args and not any(a.startswith("--load-model") for a in args)
    assert "--strict-readiness=true" in args  # a fixed model set: ready only when every model is


def test_model_sync_sidecar_only_when_asked(chart):
    spec = render(chart, {})
    assert [c["name"] for c in spec.get("Deployment", f"{RELEASE}-triton")["spec"]["template"]["spec"]["containers"]] == ["tritonserver"]
    pod = render(chart, {"triton": {"modelRepository": {"s3": {"syncIntervalSeconds": 60}}}}).get(
        "Deployment", f"{RELEASE}-triton")["spec"]["template"]["spec"]
    sidecar = next(c for c in pod["containers"] if c["name"] == "model-sync")
    env = {e["name"]: e for e in sidecar["env"]}
    assert env["SYNC_INTERVAL_SECONDS"]["value"] == "60" and env["TRITON_HTTP"]["value"] == "http://127.0.0.1:8000"
    assert "secretKeyRef" in env["TRITON_ADMIN_VALUE"]["valueFrom"]  # the admin key from the Secret, never inline
    mounts = {m["mountPath"]: m for m in sidecar["volumeMounts"]}
    assert not mounts["/models"].get("readOnly")  # it writes the repository the server reads


def test_rejections(chart):
    cases = {
        "without its gate record": {"rollout": {"enabled": True, "config": {"stable": "2"}}},
        "is the stable version": {"rollout": {"enabled": True, "registry": {"existingClaim": "x"},
                                              "config": {"stable": "2", "canary": {"version": "2", "percent": 5}}}},
        "keep it behind the admin key": {"triton": {"restrictedProtocols": {"protocols": ["statistics"]}}},
        "syncIntervalSeconds needs": {"triton": {"modelControl": {"mode": "none"},
                                                 "modelRepository": {"s3": {"syncIntervalSeconds": 30}}}},
    }
    for message, values in cases.items():
        with pytest.raises(helm_python.HelmRenderError, match=message):
            chart.render(values, name=RELEASE, namespace=NAMESPACE)
    for values in ({"rollout": {"enabled": True, "config": {"stable": "1", "canary": {"version": "2", "percent": 101}}}},
                   {"rollout": {"enabled": True, "config": {"stable": "latest"}}},
                   {"rollout": {"enabled": True, "config": {"stable": "1", "canary": {"version": "2", "share": 5}}}},
                   {"triton": {"modelControl": {"mode": "poll"}}}):
        with pytest.raises(helm_python.HelmValuesError):
            chart.render(values, name=RELEASE, namespace=NAMESPACE)
    # the default version with no canary needs no registry
    yaml.safe_load(chart.render({"rollout": {"enabled": True}}, name=RELEASE, namespace=NAMESPACE)[
        "mangaassist/templates/rollout-configmap.yaml"])


def test_rollout_alerts_read_the_metric_the_service_exports(chart):
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    RolloutController(load_settings(env={}).rollout, backend=None, feedback=FeedbackStore(),
                      version_ready=None, gate_check=None, registry=registry).m_changes.labels("refused").inc()
    exported = {s.name for m in registry.collect() for s in m.samples}
    rule = render(chart, {"monitoring": {"enabled": True}}).get("PrometheusRule", RELEASE)
    group = next(g for g in rule["spec"]["groups"] if g["name"] == "mangaassist.rollout")
    alerts = {r["alert"]: r["expr"] for r in group["rules"]}
    assert set(alerts) == {"MangaAssistCanaryRolledBack", "MangaAssistRolloutRefused"}
    for expr in alerts.values():
        assert "mangaassist_rollout_changes_total" in expr and "mangaassist_rollout_changes_total" in exported
    assert 'outcome="rolled_back"' in alerts["MangaAssistCanaryRolledBack"]
