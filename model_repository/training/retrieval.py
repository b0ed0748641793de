"""Retrieval models: the embedding adapter (contrastive, on frozen MiniLM embeddings) and the
cross-encoder reranker (MiniLM + 1-logit head), with the reports the issue asks for:
Recall@3/Recall@5/MRR base vs adapted, and Recall@3 of retrieve-then-rerank vs retrieve only.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from model_repository.training.common import batches, fit_cross_encoder, progress, read_jsonl, seed_everything

EmbedFn = Callable[[list[str]], np.ndarray]


def ranking_metrics(scores: np.ndarray, positives: list[int]) -> dict[str, float]:
    """``scores``: [queries, docs]; ``positives``: index of each query's relevant doc."""
    order = np.argsort(-scores, axis=1)
    ranks = np.array([int(np.where(order[i] == p)[0][0]) + 1 for i, p in enumerate(positives)])
    return {
        "recall@1": round(float((ranks <= 1).mean()), 4),
        "recall@3": round(float((ranks <= 3).mean()), 4),
        "recall@5": round(float((ranks <= 5).mean()), 4),
        "mrr": round(float((1.0 / ranks).mean()), 4),
        "queries": len(positives),
    }


# ----------------------------------------------------------------------------- adapter
class _Adapter:
    """y = normalize(x + W2 gelu(W1 x)): a residual MLP initialised to the identity map."""

    @staticmethod
    def module(dim: int, hidden: int) -> Any:
        import torch

        class Adapter(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.up = torch.nn.Linear(dim, hidden)
                self.down = torch.nn.Linear(hidden, dim)
                torch.nn.init.zeros_(self.down.weight)
                torch.nn.init.zeros_(self.down.bias)

            def forward(self, x: Any) -> Any:
                y = x + self.down(torch.nn.functional.gelu(self.up(x)))
                return torch.nn.functional.normalize(y, dim=-1)

        return Adapter()


def train_adapter(
    data_dir: Path,
    out_dir: Path,
    embed: EmbedFn,
    *,
    hidden: int = 512,
    epochs: int = 30,
    batch_size: int = 256,
    lr: float = 2e-3,
    temperature: float = 0.05,
    seed: int = 7,
) -> dict[str, Any]:
    """Train the adapter on (query, positive, hard negative) triples; export it to ONNX; report recall."""
    import torch

    seed_everything(seed)
    docs = read_jsonl(data_dir / "documents.jsonl")
    doc_index = {d["doc_id"]: i for i, d in enumerate(docs)}
    train = read_jsonl(data_dir / "triples" / "train.jsonl")
    test = read_jsonl(data_dir / "triples" / "test.jsonl")

    print(f"[adapter] embedding {len(docs)} documents and {len(train) + len(test)} queries with the served embedder", flush=True)
    doc_vecs = embed([d["text"] for d in docs])
    q_train = embed([t["query"] for t in train])
    q_test = embed([t["query"] for t in test])
    np.save(out_dir / "doc_vectors.npy", doc_vecs)

    dim = doc_vecs.shape[1]
    model = _Adapter.module(dim, hidden)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    D = torch.from_numpy(doc_vecs)
    Q = torch.from_numpy(q_train)
    pos = torch.tensor([doc_index[t["positive_doc_id"]] for t in train])
    neg = torch.tensor([doc_index[t["negative_doc_id"]] for t in train])
    rng = random.Random(seed)
    started = time.perf_counter()
    for epoch in progress(range(epochs), desc="adapter epochs", unit="epoch"):
        model.train()
        for idx in batches(list(range(len(train))), batch_size, rng=rng):
            idx_t = torch.tensor(idx)
            q = model(Q[idx_t])
            cand = model(torch.cat([D[pos[idx_t]], D[neg[idx_t]]]))  # in-batch positives + hard negatives
            logits = q @ cand.T / temperature
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(idx)))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    train_s = time.perf_counter() - started

    model.eval()
    onnx_path = out_dir / "model.onnx"
    torch.onnx.export(
        model,
        (torch.zeros(1, dim),),
        str(onnx_path),
        input_names=["EMBEDDING"],
        output_names=["ADAPTED"],
        dynamic_axes={"EMBEDDING": {0: "batch"}, "ADAPTED": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    positives = [doc_index[t["positive_doc_id"]] for t in test]
    with torch.inference_mode():
        adapted_docs = model(D).numpy()
        adapted_q = model(torch.from_numpy(q_test)).numpy()
    np.save(out_dir / "doc_vectors_adapted.npy", adapted_docs)
    base = ranking_metrics(q_test @ doc_vecs.T, positives)
    adapted = ranking_metrics(adapted_q @ adapted_docs.T, positives)
    print(f"[adapter] held-out base {base} -> adapted {adapted}", flush=True)
    return {
        "train_triples": len(train),
        "train_seconds": round(train_s, 1),
        "documents": len(docs),
        "base": base,
        "adapted": adapted,
        "recall@3_gain": round(adapted["recall@3"] - base["recall@3"], 4),
    }


# ----------------------------------------------------------------------------- reranker
Retrieve = Callable[[list[str], int], tuple[np.ndarray, np.ndarray]]  # (queries, k) -> (doc rows, scores)
FUSION_GRID = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def rerank_queries(data_dir: Path, *, seed: int = 11) -> list[dict]:
    """Distinct training queries ``{"query", "positive", "negatives"}``, shuffled."""
    groups: dict[str, dict[str, Any]] = {}
    for t in read_jsonl(data_dir / "triples" / "train.jsonl"):
        g = groups.setdefault(t["query"], {"query": t["query"], "positive": t["positive_doc_id"], "negatives": []})
        g["negatives"].append(t["negative_doc_id"])
    items = sorted(groups.values(), key=lambda g: g["query"])
    random.Random(seed).shuffle(items)
    return items


def held_out_queries(data_dir: Path, *, seed: int = 5) -> tuple[list[dict], list[dict]]:
    """Distinct held-out (test-split) queries ``{"query", "positive"}`` split in two disjoint halves:
    (tuning, evaluation). Neither the adapter nor the reranker trained on either; the tuning half picks
    the score-fusion weight, the evaluation half reports it."""
    seen: dict[str, dict[str, Any]] = {}
    for t in read_jsonl(data_dir / "triples" / "test.jsonl"):
        seen.setdefault(t["query"], {"query": t["query"], "positive": t["positive_doc_id"]})
    items = sorted(seen.values(), key=lambda g: g["query"])
    random.Random(seed).shuffle(items)
    half = len(items) // 2
    return items[:half], items[half:]


def train_reranker(
    data_dir: Path,
    out_dir: Path,
    *,
    checkpoint: Path,
    retrieve: Retrieve,
    max_queries: int = 1000,
    negatives: int = 3,
    epochs: int = 2,
    batch_size: int = 8,
    lr: float = 8e-5,
    max_length: int = 64,
    seed: int = 11,
) -> dict[str, Any]:
    """Cross-encoder trained listwise on what it will see when served: each training query's positive
    against the retriever's own top-ranked wrong candidates (mined through the adapted embedder) plus one
    labelled hard negative from the triples. Saves ``out_dir/hf``."""
    seed_everything(seed)
    rng = random.Random(seed)
    docs = read_jsonl(data_dir / "documents.jsonl")
    text = {d["doc_id"]: d["text"] for d in docs}
    train_q = rerank_queries(data_dir, seed=seed)[:max_queries]
    rows, _ = retrieve([g["query"] for g in train_q], 10)
    groups: list[tuple[str, str, float]] = []
    for g, row in zip(train_q, rows):
        mined = [docs[j]["doc_id"] for j in row if docs[j]["doc_id"] != g["positive"]]
        labelled = rng.choice(g["negatives"])
        negs = mined[: negatives - 1]
        negs.append(labelled if labelled not in negs else mined[negatives - 1])
        groups.append((g["query"], text[g["positive"]], 1.0))
        groups.extend((g["query"], text[n], 0.0) for n in negs)

    model, tokenizer, train_s = fit_cross_encoder(
        groups, checkpoint, epochs=epochs, batch_size=batch_size, lr=lr, max_length=max_length, rng=rng,
        desc="reranker", group_size=negatives + 1,
    )
    model.save_pretrained(out_dir / "hf")
    tokenizer.save_pretrained(out_dir / "hf")
    return {
        "train_queries": len(train_q),
        "train_pairs": len(groups),
        "negatives_per_query": negatives,
        "loss": "listwise softmax over (positive, retriever-mined and labelled hard negatives)",
        "train_seconds": round(train_s, 1),
        "pairs_per_second": round(len(groups) * epochs / train_s, 1),
    }


def _recall_at_3(rows: np.ndarray, scores: np.ndarray, targets: list[int]) -> float:
    return float(np.mean([t in row[np.argsort(-s, kind="stable")][:3] for row, s, t in zip(rows, scores, targets)]))


def evaluate_rerank(
    data_dir: Path,
    retrieve: Retrieve,
    score_pairs: Callable[[list[tuple[str, str]]], np.ndarray],
    *,
    candidates: int = 10,
    max_queries: int = 300,
) -> dict[str, Any]:
    """Recall@3 of retrieve(top-``candidates``)-then-rerank vs retrieve only, on held-out queries.

    The cross-encoder score alone, and fused with the retrieval score (``ce + w * cosine``, the
    serving setting ``retrieval.rerank_fusion_weight``), with ``w`` picked on held-out tuning queries
    that are disjoint from the evaluation queries."""
    docs = read_jsonl(data_dir / "documents.jsonl")
    doc_index = {d["doc_id"]: i for i, d in enumerate(docs)}

    def scored(queries: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows, cos = retrieve(queries, candidates)
        ce = score_pairs([(q, docs[j]["text"]) for q, row in zip(queries, rows) for j in row]).reshape(len(queries), candidates)
        return rows, cos, ce

    tuning, evaluation = held_out_queries(data_dir)
    tuning, evaluation = tuning[:max_queries], evaluation[:max_queries]
    t_rows, t_cos, t_ce = scored([g["query"] for g in tuning])
    t_targets = [doc_index[g["positive"]] for g in tuning]
    tuned = {w: _recall_at_3(t_rows, t_ce + w * t_cos, t_targets) for w in FUSION_GRID}
    weight = max(FUSION_GRID, key=lambda w: (tuned[w], -w))

    rows, cos, ce = scored([g["query"] for g in evaluation])
    targets = [doc_index[g["positive"]] for g in evaluation]
    return {
        "queries": len(evaluation),
        "tuning_queries": len(tuning),
        "candidates": candidates,
        "recall@3_retrieve_only": round(_recall_at_3(rows, cos, targets), 4),
        "recall@3_retrieve_then_rerank": round(_recall_at_3(rows, ce, targets), 4),
        "recall@3_retrieve_then_rerank_fused": round(_recall_at_3(rows, ce + weight * cos, targets), 4),
        "fusion_weight": weight,
        "fusion_tuning_recall@3": {str(w): round(r, 4) for w, r in tuned.items()},
        f"recall@{candidates}_candidate_pool": round(float(np.mean([t in row for row, t in zip(rows, targets)])), 4),
    }
