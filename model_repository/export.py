"""ONNX export and optimisation: optimum export -> serving head -> ORT transformer optimizer -> INT8.

Every encoder is exported with ``optimum`` (any HF encoder checkpoint), then a small serving head is
appended to the graph so the served model returns exactly the tensor the contract names:

* ``softmax``   logits -> PROBS (intent classifier)
* ``mean_pool`` last_hidden_state + attention_mask -> mean-pooled, L2-normalised EMBEDDING (embedder)
* ``score``     the 1-logit head -> SCORE (cross-encoders)

Each model gets three variants: ``fp32`` (plain export; what the GPU flavour serves, since TensorRT does
its own fusion), ``optimized`` (ONNX Runtime's transformer fusions, CPU) and ``int8`` (dynamic
quantisation of the optimised graph). :func:`measure_variants` reports quality against the torch
reference and in-process throughput; :func:`choose` picks the served CPU variant by that measurement.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np

Head = Literal["softmax", "mean_pool", "score"]
TASK_OF: dict[Head, str] = {"softmax": "text-classification", "mean_pool": "feature-extraction", "score": "text-classification"}
OUTPUT_OF: dict[Head, str] = {"softmax": "PROBS", "mean_pool": "EMBEDDING", "score": "SCORE"}
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
VARIANTS = ("fp32", "optimized", "int8")


def optimum_export(hf_dir: Path, out_path: Path, task: str, opset: int = 17) -> None:
    from optimum.exporters.onnx import main_export

    with tempfile.TemporaryDirectory() as tmp:
        main_export(
            model_name_or_path=str(hf_dir),
            output=tmp,
            task=task,
            opset=opset,
            do_validation=False,
            device="cpu",
        )
        shutil.move(str(Path(tmp) / "model.onnx"), out_path)


def append_head(onnx_path: Path, head: Head) -> None:
    """Rewrite the exported graph in place so it outputs the contract tensor (and takes all 3 token inputs)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    names = {i.name for i in graph.input}
    if "token_type_ids" not in names:  # e.g. DistilBERT: accept (and ignore) the tensor the tokenizer sends
        graph.input.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "sequence"]))
    src = graph.output[0].name
    out = OUTPUT_OF[head]
    if head == "softmax":
        nodes = [helper.make_node("Softmax", [src], [out], axis=-1, name="head_softmax")]
        shape = ["batch", model.graph.output[0].type.tensor_type.shape.dim[-1].dim_value]
    elif head == "score":
        nodes = [helper.make_node("Identity", [src], [out], name="head_score")]
        shape = ["batch", 1]
    else:
        hidden = model.graph.output[0].type.tensor_type.shape.dim[-1].dim_value
        graph.initializer.extend(
            [
                helper.make_tensor("head_axis_last", TensorProto.INT64, [1], [-1]),
                helper.make_tensor("head_axis_seq", TensorProto.INT64, [1], [1]),
                helper.make_tensor("head_eps", TensorProto.FLOAT, [], [1e-9]),
            ]
        )
        nodes = [
            helper.make_node("Cast", ["attention_mask"], ["head_mask_f"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["head_mask_f", "head_axis_last"], ["head_mask3"]),
            helper.make_node("Mul", [src, "head_mask3"], ["head_masked"]),
            helper.make_node("ReduceSum", ["head_masked", "head_axis_seq"], ["head_sum"], keepdims=0),
            helper.make_node("ReduceSum", ["head_mask3", "head_axis_seq"], ["head_count"], keepdims=0),
            helper.make_node("Max", ["head_count", "head_eps"], ["head_count_safe"]),
            helper.make_node("Div", ["head_sum", "head_count_safe"], ["head_mean"]),
            helper.make_node("LpNormalization", ["head_mean"], [out], axis=-1, p=2),
        ]
        shape = ["batch", hidden]
    graph.node.extend(nodes)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, shape))
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))


def optimize(src: Path, dst: Path, model_type: str) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    ort_type = model_type if model_type in ("bert", "distilbert") else "bert"
    optimized = optimize_model(str(src), model_type=ort_type, num_heads=0, hidden_size=0, opt_level=1, use_gpu=False)
    optimized.save_model_to_file(str(dst))


def quantize_int8(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused contrib ops (Attention, SkipLayerNorm) defeat shape inference; their outputs are float.
    quantize_dynamic(
        str(src), str(dst), weight_type=QuantType.QInt8, per_channel=False,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def export_variants(hf_dir: Path, out_dir: Path, head: Head) -> dict[str, Path]:
    """fp32 / optimized / int8 ONNX files for the HF model in ``hf_dir``."""
    from transformers import AutoConfig

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {v: out_dir / f"model.{v}.onnx" for v in VARIANTS}
    print(f"[export] optimum export {hf_dir.name} ({TASK_OF[head]}) -> {paths['fp32'].name}", flush=True)
    optimum_export(hf_dir, paths["fp32"], TASK_OF[head])
    append_head(paths["fp32"], head)
    print("[export] ONNX Runtime transformer optimizer", flush=True)
    optimize(paths["fp32"], paths["optimized"], AutoConfig.from_pretrained(hf_dir).model_type)
    print("[export] INT8 dynamic quantisation", flush=True)
    quantize_int8(paths["optimized"], paths["int8"])
    return paths


def session(path: Path, threads: int = 2) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_session(sess: Any, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    return np.concatenate([sess.run(None, f)[0] for f in feeds])


def throughput(sess: Any, feed: dict[str, np.ndarray], *, seconds: float = 1.5) -> float:
    """Rows per second for repeated runs of ``feed`` (one warm-up run first)."""
    sess.run(None, feed)
    rows = next(iter(feed.values())).shape[0]
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sess.run(None, feed)
        n += 1
    return n * rows / (time.perf_counter() - start)


def measure_variants(
    paths: dict[str, Path],
    feeds: list[dict[str, np.ndarray]],
    reference: np.ndarray,
    quality: Callable[[np.ndarray, np.ndarray], dict[str, float]],
    bench_feed: Callable[[int], dict[str, np.ndarray]],
    batch_sizes: tuple[int, ...] = (1, 8, 32),
) -> dict[str, Any]:
    """Quality vs the torch reference and in-process throughput per variant and batch size."""
    report: dict[str, Any] = {}
    for name, path in paths.items():
        sess = session(path)
        outputs = run_session(sess, feeds)
        tput = {str(b): round(throughput(sess, bench_feed(b)), 1) for b in batch_sizes}
        report[name] = {
            "file_mb": round(path.stat().st_size / 2**20, 1),
            "quality": quality(outputs, reference),
            "rows_per_s": tput,
            "best_rows_per_s": max(tput.values()),
            "best_batch": max(tput, key=tput.get),
        }
        print(f"[export] {path.name}: {report[name]['quality']} best {report[name]['best_rows_per_s']} rows/s", flush=True)
    return report


def choose(report: dict[str, Any], acceptable: Callable[[dict[str, float]], bool]) -> str:
    """Fastest variant whose quality is acceptable; fp32 if none of the faster ones are."""
    ok = [v for v in VARIANTS if acceptable(report[v]["quality"])] or ["fp32"]
    return max(ok, key=lambda v: report[v]["best_rows_per_s"])


def token_feeds(tokenizer: Any, texts: list[str] | list[tuple[str, str]], *, max_length: int, batch_size: int = 32) -> list[dict[str, np.ndarray]]:
    feeds = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start : start + batch_size]
        if chunk and isinstance(chunk[0], tuple):
            enc = tokenizer([a for a, _ in chunk], [b for _, b in chunk], padding=True, truncation=True, max_length=max_length, return_tensors="np")
        else:
            enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="np")
        feed = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
        feed["token_type_ids"] = enc["token_type_ids"].astype(np.int64) if "token_type_ids" in enc else np.zeros_like(feed["input_ids"])
        feeds.append(feed)
    return feeds
