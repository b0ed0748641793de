from __future__ import annotations

import dataclasses

import pytest

from server.settings import Settings, load_settings, to_dict

pytestmark = pytest.mark.L0


def test_defaults_are_the_documented_ones():
    s = load_settings(env={})
    assert s.server.port == 50051 and s.server.metrics_port == 9464
    assert s.budgets.total_ms == 300
    assert s.routing.temperatures["product_question"] == 0.1
    assert s.routing.temperatures["policy_faq"] == 0.2
    assert s.routing.temperatures["recommendation"] == 0.5
    assert s.routing.temperatures["chitchat"] == 0.7
    assert s.routing.temperatures["escalation"] == 0.1
    assert s.retrieval.backend == "faiss" and s.telemetry.otel_exporter == "none"
    assert s.paths.build_dir == ".build"


def test_frozen():
    s = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.server.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.routing.tiers["chitchat"] = "large"  # type: ignore[index]


def test_yaml_then_env(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "server:\n  port: 6000\n  max_concurrency: 8\n"
        "triton:\n  url: triton:8001\n"
        "routing:\n  tiers:\n    chitchat: small\n"
    )
    env = {
        "MANGAASSIST_CONFIG": str(cfg),
        "MANGAASSIST_TRITON_URL": "override:9001",
        "MANGAASSIST_GRPC_PORT": "7000",
        "MANGAASSIST_BUDGETS_TOTAL_MS": "250",
        "MANGAASSIST_SERVER_AUTH_TOKENS": "a, b",
        "MANGAASSIST_LLM_ENABLED": "true",
        "MANGAASSIST_TARGET": "client-only:1",
        "MANGAASSIST_NOT_A_SETTING": "x",
    }
    s = load_settings(env=env)
    assert s.server.port == 7000 and s.server.max_concurrency == 8
    assert s.triton.url == "override:9001"
    assert s.budgets.total_ms == 250.0
    assert s.server.auth_tokens == ("a", "b")
    assert s.llm.enabled is True
    assert s.routing.tiers["chitchat"] == "small" and s.routing.tiers["recommendation"] == "template"


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("server:\n  prot: 1\n", "unknown setting server.prot"),
        ("servre:\n  port: 1\n", "unknown settings section"),
        ("retrieval:\n  backend: annoy\n", "retrieval.backend"),
        ("routing:\n  tiers:\n    chitchat: huge\n", "unknown tier"),
        ("budgets:\n  rerank_ms: 0\n", "budgets.rerank_ms"),
        ("server:\n  port: eighty\n", "server.port"),
    ],
)
def test_bad_settings_are_errors(tmp_path, yaml_text, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ValueError, match=message):
        load_settings(cfg, env={})


def test_replace_and_to_dict_round_trip():
    s = Settings().replace(server={"port": 0}, budgets={"rerank_ms": 20})
    assert s.server.port == 0 and s.budgets.rerank_ms == 20
    d = to_dict(s)
    assert d["server"]["port"] == 0 and d["routing"]["tiers"]["chitchat"] == "template"
    import json

    json.dumps(d)  # JSON-able (Describe / --print-config)
