"""The reranker_student build step (model_repository/distill.py, issue 29 item 1): the gate that decides whether
the distilled student is served, which file the CPU repository gets, and -- on the built repository -- that the
student runs with the contract's shapes and that the gate's measure refuses a student with shuffled weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model_repository import distill, quantize
from model_repository.build import Builder
from tests.support.requirements import needs

BUILD = Builder()
STUDENT_DIR = BUILD.models / distill.STEP


# ----------------------------------------------------------------------------- L0: the gate and the served file
def _report(variant: str = "student_int8", **changes: float) -> dict:
    good = {"held_out": {"ordering_agreement": 0.95, "recall@3_fused": 0.855},
            "handwritten": {"ordering_agreement": 0.93}, "golden": {"top3_fused_same": 0.9}}
    fp32 = {"held_out": {"ordering_agreement": 1.0, "recall@3_fused": 0.86},
            "handwritten": {"ordering_agreement": 1.0}, "golden": {"top3_fused_same": 1.0}}
    q = json.loads(json.dumps(good))
    for key, value in changes.items():
        part, _, metric = key.partition("__")
        q[part][metric] = value
    other = "student" if variant == "student_int8" else "student_int8"
    bad = json.loads(json.dumps(good))
    bad["held_out"]["ordering_agreement"] = 0.5
    return {variant: q, other: bad, "fp32": fp32, "baseline": quantize.VARIANT,
            "chat_batch_ms": {"fp32": 50.0, quantize.VARIANT: 25.0, "student": 15.0, "student_int8": 8.0}}


@pytest.mark.L0
def test_gate_serves_a_student_only_when_it_keeps_the_order_recall_and_golden_top3_and_is_faster():
    assert distill.judge(_report()) == "student_int8"
    assert distill.judge(_report("student")) == "student"
    assert distill.judge(_report(held_out__ordering_agreement=0.89)) is None
    assert distill.judge(_report(handwritten__ordering_agreement=0.89)) is None
    assert distill.judge(_report(**{"held_out__recall@3_fused": 0.849})) is None  # 1.1 points under fp32
    assert distill.judge(_report(**{"held_out__recall@3_fused": 0.85})) == "student_int8"
    assert distill.judge(_report(golden__top3_fused_same=0.79)) is None
    slow = _report()
    slow["chat_batch_ms"]["student_int8"] = 25.0  # not faster than what is served without it
    assert distill.judge(slow) is None
    both = _report()
    both["student"] = both["student_int8"]
    assert distill.judge(both) == "student_int8"  # the cheaper of two that pass
    both["chat_batch_ms"]["student"] = 7.0
    assert distill.judge(both) == "student"


def _fake_build(tmp_path, chosen: str, made_from: str = "rk") -> Builder:
    builder = Builder(tmp_path / "build")
    onnx = builder.models / "reranker" / "onnx"
    onnx.mkdir(parents=True)
    (onnx / "model.fp32.onnx").write_text("fp32")
    (builder.models / "reranker" / "manifest.json").write_text(
        json.dumps({"key": "rk", "report": {"served_cpu_variant": "fp32", "served_gpu_variant": "fp32"}}))
    int8 = builder.models / quantize.STEP
    int8.mkdir(parents=True)
    (int8 / f"model.{quantize.VARIANT}.onnx").write_text("int8 per channel")
    (int8 / "manifest.json").write_text(json.dumps({"key": "qk", "report": {"served_cpu_variant": quantize.VARIANT,
                                                                             "made_from_reranker": "rk"}}))
    step = builder.models / distill.STEP
    step.mkdir(parents=True)
    for v in distill.VARIANTS:
        (step / f"model.{v}.onnx").write_text(v)
    (step / "manifest.json").write_text(json.dumps({"key": "sk", "report": {"served_cpu_variant": chosen,
                                                                             "made_from_reranker": made_from}}))
    return builder


@pytest.mark.L0
@pytest.mark.parametrize("chosen", distill.VARIANTS)
def test_cpu_repository_serves_the_student_the_step_chose(tmp_path, chosen):
    builder = _fake_build(tmp_path, chosen)
    assert builder.served_onnx("reranker", "cpu").read_text() == chosen
    assert builder.served_onnx("reranker", "gpu").read_text() == "fp32"
    repo = builder.assemble("cpu", tmp_path / "repo", models=["reranker_onnx"])
    assert (repo / "reranker_onnx" / "1" / "model.onnx").read_text() == chosen


@pytest.mark.L0
@pytest.mark.parametrize("chosen, made_from", [(quantize.VARIANT, "rk"), ("student_int8", "an older reranker")])
def test_the_int8_pick_is_served_when_the_student_failed_or_is_stale(tmp_path, chosen, made_from):
    builder = _fake_build(tmp_path, chosen, made_from)
    assert builder.served_onnx("reranker", "cpu").read_text() == "int8 per channel"


@pytest.mark.L0
def test_teacher_scores_are_computed_once_per_reranker_and_candidate_lists(tmp_path):
    calls = []

    def score(pairs):
        calls.append(len(pairs))
        return np.arange(len(pairs), dtype=np.float32).reshape(-1, quantize.CANDIDATES)

    pairs = [(f"q{i // 10}", f"doc {i}") for i in range(20)]
    first, cached = distill.teacher_scores(tmp_path, "rk", 64, pairs, score)
    assert not cached and calls == [20] and first.shape == (2, quantize.CANDIDATES)
    again, cached = distill.teacher_scores(tmp_path, "rk", 64, pairs, score)
    assert cached and calls == [20] and np.array_equal(again, first)
    # another reranker, another length or another list: scored again, and only the newest entry is kept
    for n, (key, seq, changed) in enumerate([("another reranker", 64, pairs), ("another reranker", 32, pairs),
                                              ("another reranker", 32, pairs[:10] + [("q1", "another doc")] + pairs[11:])]):
        assert not distill.teacher_scores(tmp_path, key, seq, changed, score)[1]
        assert calls == [20] * (n + 2) and len(list(tmp_path.glob("*.npy"))) == 1


# ----------------------------------------------------------------------------- L1: the built student
_BUILT = (STUDENT_DIR / "manifest.json").is_file() and (BUILD.models / "reranker" / "manifest.json").is_file()
built = needs("build", _BUILT, f"needs the built reranker_student step under {STUDENT_DIR}")


def _shuffled(src, dst, seed: int = 0) -> None:
    """``src`` with every weight tensor's values permuted (same shapes, same value distribution)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    rng = np.random.default_rng(seed)
    for init in model.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype == np.float32 and a.size > 64:
            init.CopyFrom(numpy_helper.from_array(rng.permutation(a.reshape(-1)).reshape(a.shape), init.name))
    onnx.save(model, str(dst))


@pytest.mark.L1
@built
def test_built_student_runs_in_onnxruntime_with_the_contract_shapes():
    from model_repository import export

    report = json.loads((STUDENT_DIR / "manifest.json").read_text())["report"]
    assert report["layers"] == list(distill.LAYERS)
    assert json.loads((STUDENT_DIR / "hf" / "config.json").read_text())["num_hidden_layers"] == len(distill.LAYERS)
    teacher = export.session(BUILD.models / "reranker" / "onnx" / "model.fp32.onnx")
    for v in distill.VARIANTS:
        sess = export.session(STUDENT_DIR / f"model.{v}.onnx")
        assert [(i.name, i.type) for i in sess.get_inputs()] == [(i.name, i.type) for i in teacher.get_inputs()]
        assert [(o.name, o.type, o.shape[1:]) for o in sess.get_outputs()] == [("SCORE", "tensor(float)", [1])]
        feed = {name: np.ones((10, 64), dtype=np.int64) for name in export.TOKEN_INPUTS}
        feed["token_type_ids"][:, 32:] = 1
        out = sess.run(None, feed)[0]
        assert out.shape == (10, 1) and out.dtype == np.float32 and np.isfinite(out).all()
    served = BUILD.served_onnx("reranker", "cpu")
    if report["served_cpu_variant"] in distill.VARIANTS:
        assert served == STUDENT_DIR / f"model.{report['served_cpu_variant']}.onnx"
    else:
        assert served.parent != STUDENT_DIR


@pytest.mark.L1
@built
def test_gate_refuses_a_student_with_shuffled_weights(tmp_path):
    from transformers import AutoTokenizer

    from model_repository import export

    _shuffled(STUDENT_DIR / "model.student.onnx", tmp_path / "shuffled.onnx")
    sessions = {"fp32": export.session(BUILD.models / "reranker" / "onnx" / "model.fp32.onnx"),
                "student": export.session(STUDENT_DIR / "model.student.onnx"),
                "student_int8": export.session(tmp_path / "shuffled.onnx")}
    tok = AutoTokenizer.from_pretrained(BUILD.models / "reranker" / "hf")
    quality, _ = distill.evaluate(BUILD, sessions, tok, BUILD.first_stage(), n_eval=16)
    report = {**quality, "baseline": "fp32", "chat_batch_ms": {"fp32": 50.0, "student": 10.0, "student_int8": 10.0}}
    shuffled = report["student_int8"]
    print({v: {k: m["ordering_agreement"] for k, m in report[v].items()} for v in ("student", "student_int8")})
    assert shuffled["held_out"]["ordering_agreement"] < distill.MIN_AGREEMENT
    assert not distill.passes(report, "student_int8")
    # the measure tells them apart: the trained student keeps more of the order the teacher is sure of (and
    # clears the bar when the build served it)
    trained = report["student"]["held_out"]["ordering_agreement"]
    assert trained > shuffled["held_out"]["ordering_agreement"]
    built_report = json.loads((STUDENT_DIR / "manifest.json").read_text())["report"]
    if built_report["served_cpu_variant"] in distill.VARIANTS:
        assert trained >= distill.MIN_AGREEMENT


class _TorchSession:
    """A HF model behind the ``sess.run(None, feed)`` interface the gate's measure calls."""

    def __init__(self, model):
        self.model = model.eval()

    def run(self, _outputs, feed):
        import torch

        with torch.inference_mode():
            return [self.model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.numpy()]


@pytest.mark.L1
@built
def test_gate_refuses_an_untrained_student_that_the_trained_one_beats():
    """The teacher cut to the student's layers but not trained (what the step starts from) must not pass: the
    training, not the copied weights, is what the gate lets through."""
    import torch
    from transformers import AutoTokenizer

    from model_repository import export

    torch.set_num_threads(2)
    sessions = {"fp32": export.session(BUILD.models / "reranker" / "onnx" / "model.fp32.onnx"),
                "student": export.session(STUDENT_DIR / "model.student.onnx"),
                "student_int8": _TorchSession(distill.make_student(BUILD.models / "reranker" / "hf"))}
    tok = AutoTokenizer.from_pretrained(BUILD.models / "reranker" / "hf")
    quality, _ = distill.evaluate(BUILD, sessions, tok, BUILD.first_stage(), n_eval=24)
    report = {**quality, "baseline": "fp32", "chat_batch_ms": {"fp32": 50.0, "student": 10.0, "student_int8": 10.0}}
    untrained, trained = report["student_int8"], report["student"]
    print({v: report[v]["held_out"] for v in ("student", "student_int8")})
    assert not distill.passes(report, "student_int8")
    assert trained["held_out"]["ordering_agreement"] > untrained["held_out"]["ordering_agreement"]
    assert trained["held_out"]["recall@3_fused"] >= untrained["held_out"]["recall@3_fused"]
