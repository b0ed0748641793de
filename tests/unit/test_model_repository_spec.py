"""The Triton configs: one source of truth, two flavours with identical contracts, committed files current."""

import pytest

from model_repository import spec
from model_repository.build import PKG

pytestmark = pytest.mark.L0


def _contract(cfg):
    io = lambda xs: [(x.name, x.data_type, list(x.dims)) for x in xs]  # noqa: E731
    return io(cfg.input), io(cfg.output), cfg.max_batch_size


def test_cpu_and_gpu_flavours_declare_identical_models_inputs_and_outputs():
    cpu, gpu = spec.render("cpu"), spec.render("gpu")
    assert sorted(cpu) == sorted(gpu)
    for name in cpu:
        assert _contract(cpu[name]) == _contract(gpu[name]), name


def test_committed_configs_match_spec_and_parse_as_triton_model_config():
    for flavour in spec.FLAVOURS:
        for name, cfg in spec.render(flavour).items():
            text = (PKG / flavour / name / "config.pbtxt").read_text()
            assert text == spec.to_pbtxt(cfg), f"{flavour}/{name} is stale: run python -m model_repository configs"
            assert spec.parse_pbtxt(text) == cfg


def test_every_batched_model_has_a_bounded_rejecting_queue():
    for flavour in spec.FLAVOURS:
        for name, cfg in spec.render(flavour).items():
            if cfg.platform == "ensemble":
                continue
            if cfg.max_batch_size == 0:  # the decoupled LLM: one prompt per request, no batcher to bound
                assert name in {m.name for m in spec.LLM_MODELS} and not cfg.HasField("dynamic_batching"), name
                continue
            policy = cfg.dynamic_batching.default_queue_policy
            assert policy.max_queue_size > 0 and policy.default_timeout_microseconds > 0, name
            assert policy.timeout_action == policy.REJECT, name


def test_gpu_flavour_uses_onnxruntime_with_tensorrt_fp16():
    cfg = spec.render("gpu")["intent_classifier_onnx"]
    assert cfg.backend == "onnxruntime"
    acc = cfg.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert acc.name == "tensorrt" and acc.parameters["precision_mode"] == "FP16"


def test_batching_off_variant_drops_the_batcher():
    assert not any(c.HasField("dynamic_batching") for c in spec.render("cpu", dynamic_batching=False).values())


def test_hallucination_scorer_is_declared_like_the_reranker():
    for flavour in spec.FLAVOURS:
        cfgs = spec.render(flavour)
        ens = cfgs["hallucination_scorer"]
        assert [i.name for i in ens.input] == ["SOURCE", "CLAIM"] and [o.name for o in ens.output] == ["SCORE"]
        assert [s.model_name for s in ens.ensemble_scheduling.step] == ["hallucination_tokenizer", "hallucination_scorer_onnx"]
        tok = cfgs["hallucination_tokenizer"]
        assert tok.parameters["mode"].string_value == "pair" and tok.parameters["buckets"].string_value == "32,64,128"
        assert tok.parameters["max_length"].string_value == "128"
        onnx = cfgs["hallucination_scorer_onnx"]
        assert list(onnx.dynamic_batching.preferred_batch_size) == [16, 32, 64]
        assert onnx.dynamic_batching.max_queue_delay_microseconds == 5000
        assert onnx.instance_group[0].count == 1
        if flavour == "cpu":
            assert onnx.parameters["intra_op_threads"].string_value == "1"
    assert spec.ARTEFACT_OF["hallucination_scorer_onnx"] == "hallucination_scorer"


def test_llm_small_is_a_decoupled_python_model_in_both_flavours():
    cpu, gpu = spec.render("cpu")["llm_small"], spec.render("gpu")["llm_small"]
    for cfg in (cpu, gpu):
        assert cfg.backend == "python" and cfg.model_transaction_policy.decoupled and cfg.max_batch_size == 0
    assert cpu.instance_group[0].kind == cpu.instance_group[0].KIND_CPU
    assert gpu.instance_group[0].kind == gpu.instance_group[0].KIND_GPU
    assert "python backend" in spec.to_pbtxt(gpu).lower()  # the committed config says why
