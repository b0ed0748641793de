"""The chart's rendered config file and env, loaded through the REAL settings loader (server.settings).

A chart that renders is not a chart that starts: the service rejects unknown config keys
(``ValueError: unknown setting llm.bedrock``) and ignores ``MANGAASSIST_*`` variables it does not know
(``MANGAASSIST_TLS_CERT_FILE`` -> a plaintext pod). For every values set below this test renders the chart
with the real Helm engine, materialises the ensemble container's ConfigMap file and environment (Secrets
resolved from the render or from fixtures), and loads them exactly as the process does
(``load_settings()`` with ``MANGAASSIST_CONFIG`` from that environment). An unknown key, an ignored
variable or a value that lands in the wrong setting fails here, in CI, in well under a second.

It also ties the chart to the images: the rendered index path is where ensemble.Dockerfile copies the
index, the ports are the ones it exposes, and triton.Dockerfile installs what the GPU flavour's
python-backend models import.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import helm_python
import pytest

from server.settings import ENV_NOT_SETTINGS, ENV_PREFIX, REDACTED, load_settings
from tests.deploy.chart_view import (CHART, RELEASE, REPO, ContainerView, dockerfile_instructions,
                                     production_values, render)

pytestmark = pytest.mark.L0

ENSEMBLE = f"Deployment/{RELEASE}-ensemble"
TOKENS = "tok-alpha-123,tok-beta-456"  # the fixture's existingSecret content (two tokens: a rotation)
FIXTURE_SECRETS = {
    "mangaassist-ensemble-auth": {"tokens": TOKENS},
    "mangaassist-ensemble-tls": {"tls.crt": "CERT", "tls.key": "KEY", "ca.crt": "CA"},
    "my-tls": {"tls.crt": "CERT", "tls.key": "KEY", "ca.crt": "CA"},
    "mangaassist-state-redis": {"url": "redis://:secret@redis.prod.internal:6379/0"},  # values-production's
    "mangaassist-state-postgres": {"password": "pg-secret"},
}

VARIANTS: dict[str, Any] = {
    "default": {},
    "production": production_values,
    "tls-mutual": {"tls": {"enabled": True, "secretName": "my-tls", "mutual": True}},
    "bedrock-region-from-aws": {"aws": {"region": "eu-west-1"}, "ensemble": {"bedrock": {"enabled": True}}},
    "external-triton-no-auth": {"triton": {"enabled": False},
                                "ensemble": {"tritonUrl": "triton.ml.svc.cluster.local:8001", "auth": {"enabled": False}}},
    "config-overrides": {"ensemble": {"config": {"server": {"max_concurrency": 16},
                                                 "routing": {"tiers": {"chitchat": "small"}},
                                                 "telemetry": {"log_level": "DEBUG"}}}},
}


@pytest.fixture(scope="module")
def chart():
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


def _values(name: str) -> dict[str, Any]:
    v = VARIANTS[name]
    return v() if callable(v) else v


def ensemble_view(chart, values: dict[str, Any]) -> tuple[Any, ContainerView]:
    rendered = render(chart, values)
    return rendered, rendered.container_view(ENSEMBLE, "ensemble", FIXTURE_SECRETS)


def load_like_the_process(view: ContainerView, root: Path, caplog) -> tuple[Any, list[str]]:
    """The container's files under ``root``, its env with mounted paths remapped, then the real loader."""
    view.write_files(root)
    prefixes = tuple(view.mounts)
    env = {k: view.remap(v, root, prefixes) for k, v in view.env.items()}
    assert Path(env["MANGAASSIST_CONFIG"]).is_file(), "MANGAASSIST_CONFIG does not point at a mounted file"
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="server.settings"):
        settings = load_settings(env=env)
    complaints = [r.getMessage() for r in caplog.records if r.name == "server.settings" and r.levelno >= logging.WARNING]
    return settings, complaints


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_config_and_env_load_through_the_settings_loader(chart, variant, tmp_path, caplog):
    values = _values(variant)
    rendered, view = ensemble_view(chart, values)
    v = rendered.values
    settings, complaints = load_like_the_process(view, tmp_path, caplog)
    # No MANGAASSIST_* variable the loader ignores ("ignoring X: not a MangaAssist setting").
    assert complaints == []
    mangaassist_vars = {k for k in view.env if k.startswith(ENV_PREFIX)}
    assert mangaassist_vars - ENV_NOT_SETTINGS, "the chart sets no settings through the environment?"

    e = v["ensemble"]
    s = settings.server
    assert s.port == view.ports["grpc"] == e["ports"]["grpc"]
    assert s.metrics_port == view.ports["metrics"] == e["ports"]["metrics"]
    assert s.drain_grace_s == e["drainGraceSeconds"]
    # TLS: the pod must serve TLS when the chart says so (the loader's names, not MANGAASSIST_TLS_*).
    if v["tls"]["enabled"]:
        mount = v["tls"]["mountPath"]
        assert s.tls_cert_file == f"{tmp_path}{mount}/tls.crt" and Path(s.tls_cert_file).read_bytes() == b"CERT"
        assert s.tls_key_file == f"{tmp_path}{mount}/tls.key" and Path(s.tls_key_file).read_bytes() == b"KEY"
        assert s.tls_client_ca_file == (f"{tmp_path}{mount}/ca.crt" if v["tls"]["mutual"] else None)
        assert s.health_port == v["tls"]["healthPort"] == view.ports["grpc-health"]
    else:
        assert s.tls_cert_file is s.tls_key_file is s.tls_client_ca_file is None
        assert s.health_port == -1
    # Auth: tokens from the Secret (generated or existing), never from the ConfigMap.
    if e["auth"]["enabled"]:
        if e["auth"]["existingSecret"]:
            assert s.auth_tokens == tuple(TOKENS.split(","))
        else:
            (token,) = s.auth_tokens
            assert len(token) >= 32
    else:
        assert s.auth_tokens == ()
    config_text = next(c for p, c in view.files.items() if p == "/etc/mangaassist/config.yaml").decode()
    assert "auth_tokens" not in config_text
    # Bedrock: flat llm.* settings, llm.enabled rendered, IRSA only.
    llm = settings.llm
    assert llm.enabled is e["bedrock"]["enabled"]
    assert llm.bedrock_region == (e["bedrock"]["region"] or v["aws"]["region"])
    assert llm.small_model_id == e["bedrock"]["smallModelId"] and llm.large_model_id == e["bedrock"]["largeModelId"]
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(view.env)
    # Where the image keeps the index (a remapped absolute path here would mean a mounted index: none is).
    assert settings.retrieval.index_dir == e["indexDir"]
    assert settings.retrieval.catalog_db == f"{e['indexDir']}/catalog.sqlite"
    # Triton: the same address in the file and the env; a release Triton serves the local tier + scorer.
    assert settings.triton.url == view.env["MANGAASSIST_TRITON_URL"]
    if v["triton"]["enabled"]:
        assert settings.triton.url == f"{RELEASE}-triton-headless.shop.svc.cluster.local:{v['triton']['ports']['grpc']}"
        assert llm.local_tier == "on" and settings.guardrails.hallucination_scoring == "triton"
    else:
        assert settings.triton.url == e["tritonUrl"]
    # Free-form config reaches the settings it names.
    if variant == "config-overrides":
        assert s.max_concurrency == 16 and settings.routing.tiers["chitchat"] == "small"
        assert settings.telemetry.log_level == "DEBUG"


def test_production_turns_the_large_tier_on_with_irsa(chart):
    rendered, view = ensemble_view(chart, production_values())
    config = next(c for p, c in view.files.items() if p.endswith("config.yaml")).decode()
    assert re.search(r"^\s+enabled: true$", config, re.M)  # llm.enabled
    sa = rendered.get("ServiceAccount", view.pod_spec["serviceAccountName"])
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("ensemble-bedrock")
    assert view.pod_spec["automountServiceAccountToken"] is False


def test_print_config_redacts_the_tokens(chart, tmp_path, monkeypatch, capsys, caplog):
    """``python -m server --print-config`` in the rendered environment shows every setting but no secret."""
    from server.__main__ import main

    _, view = ensemble_view(chart, production_values())
    view.write_files(tmp_path)
    for key in [k for k in list(os.environ) if k.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in view.env.items():
        monkeypatch.setenv(key, view.remap(value, tmp_path, tuple(view.mounts)))
    assert main(["--print-config"]) == 0
    out = capsys.readouterr().out
    printed = json.loads(out)
    assert printed["server"]["auth_tokens"] == [REDACTED, REDACTED]
    assert printed["llm"]["enabled"] is True and printed["server"]["tls_cert_file"].endswith("/tls.crt")
    for token in TOKENS.split(","):
        assert token not in out
        assert token not in caplog.text


# ----------------------------------------------------------------------------- images


def test_ensemble_image_matches_the_chart(chart):
    """The rendered index path, entrypoint, ports and user are what ensemble.Dockerfile provides."""
    steps = dockerfile_instructions(REPO / "deploy" / "docker" / "ensemble.Dockerfile")
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM"):]  # the runtime stage
    copies = [args.split()[-1] for op, args in final if op == "COPY"]
    entrypoint = json.loads(next(args for op, args in final if op == "ENTRYPOINT"))
    exposed = {int(p) for op, args in final if op == "EXPOSE" for p in args.split()}
    user = next(args for op, args in final if op == "USER")
    for values in ({}, production_values()):
        rendered, view = ensemble_view(chart, values)
        index = rendered.values["ensemble"]["indexDir"]
        assert index in copies, f"the image does not copy the index to {index} (COPY destinations: {copies})"
        assert "command" not in view.container, "the chart overrides the image's entrypoint"
        assert entrypoint == ["python", "-m", "server"]
        assert {view.ports["grpc"], view.ports["metrics"]} <= exposed
        assert user.split(":")[0] == str(view.container["securityContext"]["runAsUser"])


def _third_party_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "triton_python_backend_utils"}


def test_triton_image_installs_what_the_gpu_python_models_import():
    """The GPU flavour's python-backend models (tokenizers, the SmolLM2 KV-cache loop) load in the image."""
    backends = REPO / "model_repository" / "backends"
    imports = _third_party_imports(backends / "tokenizer_model.py") | _third_party_imports(backends / "llm_model.py")
    assert {"numpy", "tokenizers", "onnxruntime"} <= imports
    steps = dockerfile_instructions(REPO / "deploy" / "docker" / "triton.Dockerfile")
    installs = " ".join(args for op, args in steps if op == "RUN" and "pip install" in args)
    pip_names = {"onnxruntime": r"onnxruntime(-gpu)?"}
    for module in sorted(imports):
        assert re.search(rf"[\"' ]{pip_names.get(module, module)}[=<>]", installs), f"triton.Dockerfile does not install {module}"


def test_values_schema_config_is_the_settings_schema(chart):
    """values.schema.json's ``ensemble.config`` is generated from server/settings.py; a new or renamed setting
    needs ``python deploy/helm/settings_schema.py --write`` (else helm refuses a valid key, or admits a dead one)."""
    sys.path.insert(0, str(REPO / "deploy" / "helm"))
    try:
        import settings_schema
    finally:
        sys.path.remove(str(REPO / "deploy" / "helm"))
    assert chart.schema["properties"]["ensemble"]["properties"]["config"] == settings_schema.config_schema(), (
        "values.schema.json is stale: run python deploy/helm/settings_schema.py --write")
