"""Issue 4 wiring: the build runs the SmolLM2 export and the hallucination scorer before assembling, the
repository gets ``llm_small`` and the scorer ensemble, and the service picks its tiers and scorer backend
from what the built repository holds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model_repository import spec
from model_repository.build import Builder
from server.app import build_hallucination_score_fn, build_tiers
from server.hallucination import FallbackScoreFn
from server.llm.local import LocalTier
from server.settings import Settings

pytestmark = pytest.mark.L0


# ----------------------------------------------------------------------------- build
def test_build_all_runs_the_new_steps_after_the_reranker_and_before_assembly(tmp_path, monkeypatch):
    order: list[str] = []
    steps = ["build_data", "build_golden", "build_intent", "build_embedder", "build_adapter", "build_reranker", "build_reranker_int8",
             "build_reranker_student",
             "build_hallucination_scorer", "build_smollm2", "rules_report", "assemble", "build_index"]
    for name in steps:
        monkeypatch.setattr(Builder, name, lambda self, *a, _n=name, **k: order.append(_n) or {})
    summary = Builder(tmp_path).build_all()
    assert order.index("build_reranker") < order.index("build_hallucination_scorer") < order.index("build_smollm2")
    assert order.index("build_smollm2") < order.index("assemble") < order.index("build_index")
    assert order.count("assemble") == len(spec.FLAVOURS)
    assert {"hallucination_scorer", "llm_small"} <= set(summary)


def _fake_exports(builder: Builder) -> None:
    llm = builder.models / "smollm2" / "onnx"
    llm.mkdir(parents=True)
    for name in ("model.onnx", "model.onnx_data", "tokenizer.json", "llm_meta.json"):
        (llm / name).write_text(name)
    scorer = builder.models / "hallucination_scorer"
    (scorer / "onnx").mkdir(parents=True)
    (scorer / "onnx" / "model.int8.onnx").write_text("cpu graph")
    (scorer / "onnx" / "model.fp32.onnx").write_text("gpu graph")
    report = {"served_cpu_variant": "int8", "served_gpu_variant": "fp32"}
    (scorer / "manifest.json").write_text(json.dumps({"key": "k", "report": report}))


@pytest.mark.parametrize("flavour", spec.FLAVOURS)
def test_assemble_places_llm_small_and_the_hallucination_scorer(tmp_path, flavour):
    builder = Builder(tmp_path / "build")
    _fake_exports(builder)
    names = ["llm_small", "hallucination_tokenizer", "hallucination_scorer_onnx", "hallucination_scorer"]
    repo = builder.assemble(flavour, tmp_path / "repo", models=names)
    assert sorted(p.name for p in repo.iterdir()) == sorted(names)
    configs = spec.render(flavour)
    for name in names:
        assert (repo / name / "config.pbtxt").read_text() == spec.to_pbtxt(configs[name]), name
    llm = repo / "llm_small" / "1"
    assert {p.name for p in llm.iterdir()} == {"model.py", "model.onnx", "model.onnx_data", "tokenizer.json", "llm_meta.json"}
    graph = (repo / "hallucination_scorer_onnx" / "1" / "model.onnx").read_text()
    assert graph == ("cpu graph" if flavour == "cpu" else "gpu graph")
    assert (repo / "hallucination_scorer_onnx" / "1" / "model.py").exists() == (flavour == "cpu")
    assert (repo / "hallucination_tokenizer" / "1" / "tokenizer.json").exists()
    with pytest.raises(ValueError, match="unknown model"):
        builder.assemble(flavour, tmp_path / "repo2", models=["nope"])


# ----------------------------------------------------------------------------- service
def _settings(tmp_path, *models: str, **sections) -> Settings:
    for model in models:
        (tmp_path / "triton" / "cpu" / model).mkdir(parents=True, exist_ok=True)
        (tmp_path / "triton" / "cpu" / model / "config.pbtxt").write_text("")
    return Settings().replace(paths={"build_dir": str(tmp_path)}, **sections)


def test_local_tier_serves_small_and_large_without_bedrock(tmp_path):
    tiers = build_tiers(_settings(tmp_path, "llm_small", triton={"url": "triton:8001"}), catalog=None)
    assert isinstance(tiers["small"], LocalTier) and tiers["large"] is tiers["small"]
    assert tiers["small"].triton_url == "triton:8001" and tiers["small"].model_name == "llm_small"
    assert tiers["small"].name == "small" and tiers["small"].model_id == "smollm2-135m-instruct"


def test_local_tier_only_when_the_repository_has_it_or_forced(tmp_path):
    assert build_tiers(_settings(tmp_path), catalog=None) == {}
    assert build_tiers(_settings(tmp_path, "llm_small"), catalog=None, fake_backend=True) == {}
    assert build_tiers(_settings(tmp_path, "llm_small", llm={"local_tier": "off"}), catalog=None) == {}
    forced = build_tiers(Settings().replace(paths={"build_dir": str(tmp_path / "none")}, llm={"local_tier": "on"}), catalog=None)
    assert isinstance(forced["small"], LocalTier) and forced["large"] is forced["small"]
    with pytest.raises(ValueError, match="local_tier"):
        Settings().replace(llm={"local_tier": "maybe"})


def test_bedrock_keeps_large_and_the_local_model_keeps_small(tmp_path):
    from server.llm.bedrock import BedrockTier

    tiers = build_tiers(_settings(tmp_path, "llm_small", llm={"enabled": True}), catalog=None)
    assert isinstance(tiers["small"], LocalTier) and isinstance(tiers["large"], BedrockTier)
    no_local = build_tiers(_settings(tmp_path / "b", llm={"enabled": True}), catalog=None)
    assert isinstance(no_local["small"], BedrockTier) and isinstance(no_local["large"], BedrockTier)


def test_hallucination_backend_follows_the_repository_and_settings(tmp_path):
    with_model = _settings(tmp_path, "hallucination_scorer")
    assert isinstance(build_hallucination_score_fn(with_model), FallbackScoreFn)
    lexical = build_hallucination_score_fn(with_model, fake_backend=True)
    assert not isinstance(lexical, FallbackScoreFn) and callable(lexical)
    assert not isinstance(build_hallucination_score_fn(_settings(tmp_path / "b")), FallbackScoreFn)
    forced = Settings().replace(guardrails={"hallucination_scoring": "triton"})
    assert isinstance(build_hallucination_score_fn(forced, fake_backend=True), FallbackScoreFn)
    assert build_hallucination_score_fn(Settings().replace(guardrails={"hallucination_scoring": "off"})) is None
    with pytest.raises(ValueError, match="hallucination_scoring"):
        Settings().replace(guardrails={"hallucination_scoring": "maybe"})


async def test_fallback_score_fn_uses_lexical_while_the_model_is_missing():
    now = [0.0]
    calls = {"primary": 0, "fallback": 0}

    async def primary(sources, claims):
        calls["primary"] += 1
        if calls["primary"] == 1:
            raise RuntimeError("Request for unknown model: 'hallucination_scorer' is not found")
        return np.full(len(sources), -5.0, dtype=np.float32)

    async def fallback(sources, claims):
        calls["fallback"] += 1
        return np.full(len(sources), 3.0, dtype=np.float32)

    fn = FallbackScoreFn(primary, fallback, retry_after_s=10.0, monotonic=lambda: now[0])
    assert (await fn(["s"], ["c"])).tolist() == [3.0] and fn.using_fallback
    now[0] = 5.0
    assert (await fn(["s"], ["c"])).tolist() == [3.0] and calls["primary"] == 1  # not retried before 10 s
    now[0] = 11.0
    assert (await fn(["s"], ["c"])).tolist() == [-5.0] and not fn.using_fallback
    assert calls == {"primary": 2, "fallback": 2}
