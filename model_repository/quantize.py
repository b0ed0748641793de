"""The reranker made cheaper at the same ordering: int8 weights per output channel (build step ``reranker_int8``).

On 2 CPU cores the fp32 cross-encoder needs ~60 ms (quiet) to ~300 ms (shared cores) for a chat's 10 pairs of
64 tokens, against the chat's 100 ms rerank budget, so the service skips it on most chats. This step makes
``model.int8_pc.onnx`` from the reranker step's ONNX Runtime-optimised graph: dynamic int8 quantisation
(activation scales computed per batch), weights quantised **per output channel**. Measured alternatives
(docs/serving-speed.md): per-tensor dynamic int8 (the reranker step's ``int8``) and static QDQ with
calibration on real (query, chunk) pairs, per-channel, attention matmuls and last layer kept fp32, MinMax or
percentile calibration, both reorder more candidates than this; static QDQ was also no faster.

The step serves the variant only if it holds the ordering on what the served reranker ranks, measured
against the fp32 reranker:

* the top-:data:`CANDIDATES` vector candidates (the served first stage: embedder -> adapter -> inner product)
  of the held-out evaluation queries *and* of the 200 hand-written messages (``tests/fixtures``, the query
  text the service sends, :func:`server.retrieval.query.expand`);
* **ordering agreement**: over each query's candidate pairs, the share the variant orders as fp32 does,
  counting the pairs fp32 separates by at least :data:`MIN_GAP` logits. The listwise-trained reranker puts
  every wrong candidate on one floor (about -3.6), so ~half the pairs are fp32 ties whose order is noise;
  the agreement over all pairs is reported next to it;
* Recall@3 on the held-out queries, cross-encoder alone and fused with the retrieval score the way the
  service ranks (:data:`SERVED_FUSION_WEIGHT`), within :data:`MAX_RECALL_DROP` of fp32's (fused at the reranker
  step's own pick of the weight is reported too);
* and it must be faster than fp32 on a chat's batch (10 pairs, 64 tokens), interleaved rounds.

``Builder.served_onnx("reranker", "cpu")`` serves this file when the step chose it for the reranker it was
made from; the GPU flavour keeps fp32 (TensorRT does its own precision).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

CANDIDATES = 10  # the served retrieval.rerank_top_n
MIN_GAP = 0.1  # logits: closer fp32 scores are ties
MIN_AGREEMENT = 0.97
MAX_RECALL_DROP = 0.005
#: the service ranks by cross-encoder logit + this x retrieval cosine (server/settings.py
#: retrieval.rerank_fusion_weight; a unit test keeps the two equal -- the build side may not import settings)
SERVED_FUSION_WEIGHT = 0.5
VARIANT = "int8_pc"
STEP = "reranker_int8"


def quantize_per_channel(src: Path, dst: Path) -> None:
    """Dynamic int8 (MatMulInteger / QAttention), weights per output channel, float outputs kept float."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},  # fused contrib ops defeat shape inference
    )


def ordering_agreement(scores: np.ndarray, reference: np.ndarray, *, k: int = CANDIDATES, min_gap: float = MIN_GAP) -> float:
    """Share of within-query candidate pairs ordered as ``reference`` orders them, over the pairs whose
    reference scores differ by at least ``min_gap`` (0: every pair). Rows are queries of ``k`` candidates."""
    s, r = np.asarray(scores, dtype=np.float64).reshape(-1, k), np.asarray(reference, dtype=np.float64).reshape(-1, k)
    i, j = np.triu_indices(k, 1)
    ds, dr = s[:, i] - s[:, j], r[:, i] - r[:, j]
    counted = np.abs(dr) >= max(min_gap, 1e-12)
    if not counted.any():
        return 1.0
    return float((np.sign(ds) == np.sign(dr))[counted].mean())


def recall_at_3(rows: np.ndarray, scores: np.ndarray, targets: Sequence[int]) -> float:
    top = np.argsort(-scores, axis=1, kind="stable")[:, :3]
    return float(np.mean([t in set(row[top_i].tolist()) for row, top_i, t in zip(rows, top, targets)]))


def chat_batch_ms(sessions: dict[str, Any], feed: dict[str, np.ndarray], *, rounds: int = 5, seconds: float = 0.6) -> dict[str, float]:
    """Median ms per run of ``feed`` for each session, rounds interleaved (shared cores move both alike)."""
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for sess in sessions.values():
        sess.run(None, feed)
    for _ in range(rounds):
        for name, sess in sessions.items():
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                t = time.perf_counter()
                sess.run(None, feed)
                times[name].append(time.perf_counter() - t)
    return {name: round(float(np.median(v)) * 1000, 2) for name, v in times.items()}


def judge(report: dict[str, Any]) -> bool:
    """Whether the measured variant may be served instead of fp32."""
    q, ref = report[VARIANT], report["fp32"]
    return (
        q["held_out"]["ordering_agreement"] >= MIN_AGREEMENT
        and q["handwritten"]["ordering_agreement"] >= MIN_AGREEMENT
        and q["held_out"]["recall@3_fused"] >= ref["held_out"]["recall@3_fused"] - MAX_RECALL_DROP
        and q["held_out"]["recall@3"] >= ref["held_out"]["recall@3"] - MAX_RECALL_DROP
        and report["chat_batch_ms"][VARIANT] < report["chat_batch_ms"]["fp32"]
    )


def build_step(builder: Any, retrieve_fn: Callable[[], Callable[[list[str], int], tuple[np.ndarray, np.ndarray]]]) -> dict[str, Any]:
    """Cached on the reranker step's manifest (its key names its weights), the evaluation inputs and this file."""
    from model_repository import cache, export, spec
    from model_repository.training.common import read_jsonl
    from model_repository.training.retrieval import held_out_queries
    from server.retrieval.query import expand

    pkg = Path(__file__).resolve().parent
    handwritten_file = pkg.parent / "tests" / "fixtures" / "intents_handwritten.jsonl"
    reranker_dir = builder.models / "reranker"
    quick = bool(getattr(builder.cfg, "quick", False))
    n_held_out, n_hand = (24, 24) if quick else (None, None)
    seq = next(t.max_length for t in spec.TOKENIZERS if t.name == "rerank_tokenizer")  # what Triton feeds it
    key = cache.step_key(
        STEP,
        config={"candidates": CANDIDATES, "min_gap": MIN_GAP, "min_agreement": MIN_AGREEMENT, "seq": seq,
                "max_recall_drop": MAX_RECALL_DROP, "n": [n_held_out, n_hand]},
        inputs=[reranker_dir / "manifest.json", builder.data / "documents.jsonl", builder.data / "triples", handwritten_file,
                builder.models / "embedding_adapter" / "manifest.json"],
        code=[Path(__file__)],
    )
    reranker_key = json.loads((reranker_dir / "manifest.json").read_text())["key"]

    def run(out: Path) -> dict[str, Any]:
        from transformers import AutoTokenizer

        started = time.perf_counter()
        reranker_report = json.loads((reranker_dir / "manifest.json").read_text())["report"]
        build_pick = float(reranker_report.get("rerank_eval", {}).get("fusion_weight", SERVED_FUSION_WEIGHT))
        dst = out / f"model.{VARIANT}.onnx"
        print(f"[{STEP}] dynamic int8, per-channel weights -> {dst.name}", flush=True)
        quantize_per_channel(reranker_dir / "onnx" / "model.optimized.onnx", dst)
        quantize_s = time.perf_counter() - started
        tok = AutoTokenizer.from_pretrained(reranker_dir / "hf")
        sessions = {"fp32": export.session(reranker_dir / "onnx" / "model.fp32.onnx"), VARIANT: export.session(dst)}

        docs = read_jsonl(builder.data / "documents.jsonl")
        doc_row = {d["doc_id"]: i for i, d in enumerate(docs)}
        _, evaluation = held_out_queries(builder.data)
        evaluation = evaluation[:n_held_out]
        hand = [expand(json.loads(line)["text"]) for line in handwritten_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        hand = hand[:n_hand]
        retrieve = retrieve_fn()
        sets = {
            "held_out": ([g["query"] for g in evaluation], [doc_row[g["positive"]] for g in evaluation]),
            "handwritten": (hand, None),
        }
        scored: dict[str, dict[str, Any]] = {}
        for name, (queries, _) in sets.items():
            rows, cos = retrieve(queries, CANDIDATES)
            pairs = [(q, docs[j]["text"]) for q, row in zip(queries, rows) for j in row]
            feeds = export.token_feeds(tok, pairs, max_length=seq, batch_size=CANDIDATES)
            scored[name] = {"rows": rows, "cos": cos,
                            **{v: export.run_session(s, feeds).reshape(-1, CANDIDATES) for v, s in sessions.items()}}

        report: dict[str, Any] = {"made_from_reranker": reranker_key, "quantize_seconds": round(quantize_s, 1),
                                  "fusion_weight": SERVED_FUSION_WEIGHT,
                                  "reranker_step_fusion_weight": build_pick, "min_gap": MIN_GAP, "candidates": CANDIDATES}
        for variant in sessions:
            entry: dict[str, Any] = {}
            for name, (queries, targets) in sets.items():
                s, r = scored[name][variant], scored[name]["fp32"]
                m: dict[str, Any] = {
                    "queries": len(queries),
                    "ordering_agreement": round(ordering_agreement(s, r), 4),
                    "ordering_agreement_all_pairs": round(ordering_agreement(s, r, min_gap=0.0), 4),
                    "top1_agreement": round(float((s.argmax(1) == r.argmax(1)).mean()), 4),
                    "max_abs_diff": round(float(np.abs(s - r).max()), 4),
                }
                if targets is not None:
                    rows, cos = scored[name]["rows"], scored[name]["cos"]
                    m["recall@3_retrieve_only"] = round(recall_at_3(rows, cos, targets), 4)
                    m["recall@3"] = round(recall_at_3(rows, s, targets), 4)
                    m["recall@3_fused"] = round(recall_at_3(rows, s + SERVED_FUSION_WEIGHT * cos, targets), 4)
                    m["recall@3_fused_at_reranker_step_weight"] = round(recall_at_3(rows, s + build_pick * cos, targets), 4)
                entry[name] = m
            entry["file_mb"] = round((dst if variant == VARIANT else reranker_dir / "onnx" / "model.fp32.onnx").stat().st_size / 2**20, 1)
            report[variant] = entry
        chat = export.token_feeds(tok, [(sets["held_out"][0][0], docs[j]["text"]) for j in scored["held_out"]["rows"][0]],
                                  max_length=seq, batch_size=CANDIDATES)[0]
        chat = {k: np.pad(v, ((0, 0), (0, seq - v.shape[1]))) for k, v in chat.items()}  # the tokenizer's top bucket
        report["chat_batch_ms"] = chat_batch_ms(sessions, chat)
        report["speedup"] = round(report["chat_batch_ms"]["fp32"] / report["chat_batch_ms"][VARIANT], 2)
        report["served_cpu_variant"] = VARIANT if judge(report) else "fp32"
        report["step_seconds"] = round(time.perf_counter() - started, 1)
        print(f"[{STEP}] serving {report['served_cpu_variant']}: {json.dumps({k: report[k] for k in (VARIANT, 'chat_batch_ms')})}",
              flush=True)
        return report

    return cache.cached_step(builder.models / STEP, key, run, label=STEP)


def chosen_variant(models_dir: Path, step: str, variants: tuple[str, ...]) -> Path | None:
    """The file a variant step (this one, distill.py's student) chose to serve, when it chose one of ``variants`` for
    the reranker now built; else None (the caller serves the next pick)."""
    manifest, reranker = models_dir / step / "manifest.json", models_dir / "reranker" / "manifest.json"
    if not (manifest.is_file() and reranker.is_file()):
        return None
    report = json.loads(manifest.read_text())["report"]
    if report.get("served_cpu_variant") not in variants or report.get("made_from_reranker") != json.loads(reranker.read_text())["key"]:
        return None
    return models_dir / step / f"model.{report['served_cpu_variant']}.onnx"


def served_file(models_dir: Path) -> Path | None:
    """The step's file when it chose it for the reranker now built (else None: serve the reranker step's pick)."""
    return chosen_variant(models_dir, STEP, (VARIANT,))
