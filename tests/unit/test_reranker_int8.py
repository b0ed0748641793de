"""The reranker_int8 build step (model_repository/quantize.py): the ordering measure, the gate that decides
whether the int8 file is served, and which file the CPU repository gets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model_repository import quantize
from model_repository.build import Builder
from server.settings import Settings

pytestmark = pytest.mark.L0


def test_ordering_agreement_counts_the_pairs_the_reference_separates():
    ref = np.array([[5.0, 1.0, -3.60, -3.65]])
    assert quantize.ordering_agreement(ref, ref, k=4) == 1.0
    # the two floor candidates (0.05 apart: a tie) swap: not counted
    assert quantize.ordering_agreement(np.array([[5.0, 1.0, -3.7, -3.6]]), ref, k=4) == 1.0
    # ... unless every pair counts: 1 of 6 pairs disagrees
    assert quantize.ordering_agreement(np.array([[5.0, 1.0, -3.7, -3.6]]), ref, k=4, min_gap=0.0) == pytest.approx(5 / 6)
    # a decisive pair swaps: 1 of the 5 counted pairs
    assert quantize.ordering_agreement(np.array([[1.0, 5.0, -3.60, -3.65]]), ref, k=4) == pytest.approx(4 / 5)


def test_recall_at_3_reads_the_top_three_rows():
    rows = np.array([[10, 11, 12, 13], [20, 21, 22, 23]])
    scores = np.array([[4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    assert quantize.recall_at_3(rows, scores, [13, 23]) == 0.5


def _report(**changes: float) -> dict:
    quality = {"held_out": {"ordering_agreement": 0.99, "recall@3": 0.85, "recall@3_fused": 0.86},
               "handwritten": {"ordering_agreement": 0.98}}
    fp32 = {"held_out": {"ordering_agreement": 1.0, "recall@3": 0.85, "recall@3_fused": 0.86},
            "handwritten": {"ordering_agreement": 1.0}}
    q = json.loads(json.dumps(quality))
    for key, value in changes.items():
        part, _, metric = key.partition("__")
        q[part][metric] = value
    return {quantize.VARIANT: q, "fp32": fp32, "chat_batch_ms": {"fp32": 60.0, quantize.VARIANT: 30.0}}


def test_gate_serves_int8_only_when_it_keeps_the_ordering_recall_and_is_faster():
    assert quantize.judge(_report())
    assert not quantize.judge(_report(handwritten__ordering_agreement=0.969))
    assert not quantize.judge(_report(held_out__ordering_agreement=0.96))
    assert not quantize.judge(_report(**{"held_out__recall@3_fused": 0.854}))
    assert quantize.judge(_report(**{"held_out__recall@3_fused": 0.855}))
    assert not quantize.judge(_report(**{"held_out__recall@3": 0.84}))
    slow = _report()
    slow["chat_batch_ms"][quantize.VARIANT] = 61.0
    assert not quantize.judge(slow)


def test_served_fusion_weight_is_the_services():
    assert quantize.SERVED_FUSION_WEIGHT == Settings().retrieval.rerank_fusion_weight


def _fake_build(tmp_path, chosen: str, made_from: str = "rk") -> Builder:
    builder = Builder(tmp_path / "build")
    onnx = builder.models / "reranker" / "onnx"
    onnx.mkdir(parents=True)
    for v in ("fp32", "optimized", "int8"):
        (onnx / f"model.{v}.onnx").write_text(v)
    (builder.models / "reranker" / "manifest.json").write_text(
        json.dumps({"key": "rk", "report": {"served_cpu_variant": "fp32", "served_gpu_variant": "fp32"}}))
    step = builder.models / quantize.STEP
    step.mkdir(parents=True)
    (step / f"model.{quantize.VARIANT}.onnx").write_text("int8 per channel")
    (step / "manifest.json").write_text(
        json.dumps({"key": "qk", "report": {"served_cpu_variant": chosen, "made_from_reranker": made_from}}))
    return builder


def test_cpu_repository_serves_the_int8_file_when_the_step_chose_it(tmp_path):
    builder = _fake_build(tmp_path, quantize.VARIANT)
    assert builder.served_onnx("reranker", "cpu").read_text() == "int8 per channel"
    assert builder.served_onnx("reranker", "gpu").read_text() == "fp32"
    repo = builder.assemble("cpu", tmp_path / "repo", models=["reranker_onnx"])
    assert (repo / "reranker_onnx" / "1" / "model.onnx").read_text() == "int8 per channel"


@pytest.mark.parametrize("chosen, made_from", [("fp32", "rk"), (quantize.VARIANT, "an older reranker")])
def test_fp32_is_served_when_the_step_kept_it_or_is_stale(tmp_path, chosen, made_from):
    builder = _fake_build(tmp_path, chosen, made_from)
    assert builder.served_onnx("reranker", "cpu").read_text() == "fp32"


# ----------------------------------------------------------------------------- benchmarks.speed.rerank
def test_rerank_comparison_pools_rounds_and_rewrites_only_the_instances(tmp_path):
    from benchmarks.speed.rerank import set_instances, summarise
    from model_repository import spec

    rounds = [{"rerank_eligible": 100, "rerank_applied": 90, "rerank_applied_share": 0.9, "outcomes": {"OK": 150}, "sent": 150,
               "e2e": {"p50_ms": 30.0, "p99_ms": 120.0}, "stages": {"rerank": {"p50_ms": 50.0, "p99_ms": 90.0}},
               "degraded": {"rerank_skipped": 10}},
              {"rerank_eligible": 50, "rerank_applied": 0, "rerank_applied_share": 0.0, "outcomes": {"OK": 70}, "sent": 75,
               "e2e": {"p50_ms": 40.0, "p99_ms": 200.0}, "stages": {}, "degraded": {"rerank_skipped": 50}}]
    s = summarise(rounds)
    assert (s["reranked"], s["eligible"], s["reranked_share"]) == (90, 150, 0.6)
    assert s["reranked_share_per_round"] == [0.9, 0.0] and s["ok"] == 220 and s["sent"] == 225
    assert s["e2e_p99_ms"] == 160.0 and s["rerank_p50_ms"] == 50.0 and s["degraded"] == {"rerank_skipped": 60}

    shipped = spec.render("cpu")["reranker_onnx"]
    (tmp_path / "reranker_onnx").mkdir()
    (tmp_path / "reranker_onnx" / "config.pbtxt").write_text(spec.to_pbtxt(shipped))
    set_instances(tmp_path, 2, 1)
    cfg = spec.parse_pbtxt((tmp_path / "reranker_onnx" / "config.pbtxt").read_text())
    assert cfg.instance_group[0].count == 2 and cfg.parameters["intra_op_threads"].string_value == "1"
    cfg.instance_group[0].count = shipped.instance_group[0].count
    cfg.parameters["intra_op_threads"].string_value = shipped.parameters["intra_op_threads"].string_value
    assert cfg == shipped
