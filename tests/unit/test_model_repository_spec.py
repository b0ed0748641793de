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
