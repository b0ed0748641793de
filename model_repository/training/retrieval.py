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
def train_reranker(
    data_dir: Path,
    out_dir: Path,
    *,
    checkpoint: Path,
    max_triples: int = 2400,
    epochs: int = 1,
    batch_size: int = 32,
    lr: float = 5e-5,
    max_length: int = 128,
    seed: int = 11,
) -> dict[str, Any]:
    """Cross-encoder: (query, positive)=1 and (query, hard negative)=0 with BCE; saves ``out_dir/hf``."""
    seed_everything(seed)
    rng = random.Random(seed)
    docs = {d["doc_id"]: d["text"] for d in read_jsonl(data_dir / "documents.jsonl")}
    doc_ids = sorted(docs)
    triples = read_jsonl(data_dir / "triples" / "train.jsonl")
    triples = rng.sample(triples, min(max_triples, len(triples)))
    pairs: list[tuple[str, str, float]] = []
    for t in triples:
        pairs.append((t["query"], docs[t["positive_doc_id"]], 1.0))
        pairs.append((t["query"], docs[t["negative_doc_id"]], 0.0))
        if rng.random() < 0.25:  # a few easy negatives keep the scale calibrated
            pairs.append((t["query"], docs[rng.choice(doc_ids)], 0.0))

    model, tokenizer, train_s = fit_cross_encoder(
        pairs, checkpoint, epochs=epochs, batch_size=batch_size, lr=lr, max_length=max_length, rng=rng, desc="reranker"
    )
    model.save_pretrained(out_dir / "hf")
    tokenizer.save_pretrained(out_dir / "hf")
    return {"train_pairs": len(pairs), "train_seconds": round(train_s, 1), "pairs_per_second": round(len(pairs) * epochs / train_s, 1)}


def evaluate_rerank(
    data_dir: Path,
    query_vectors: np.ndarray,
    doc_vectors: np.ndarray,
    score_pairs: Callable[[list[tuple[str, str]]], np.ndarray],
    *,
    candidates: int = 10,
    max_queries: int = 300,
) -> dict[str, Any]:
    """Recall@3 of retrieve(top-``candidates``)-then-rerank vs retrieve only, on held-out queries."""
    docs = read_jsonl(data_dir / "documents.jsonl")
    doc_index = {d["doc_id"]: i for i, d in enumerate(docs)}
    test = read_jsonl(data_dir / "triples" / "test.jsonl")[:max_queries]
    qv = query_vectors[: len(test)]
    top = np.argsort(-(qv @ doc_vectors.T), axis=1)[:, :candidates]
    hits_retrieve, hits_rerank, in_pool = 0, 0, 0
    pairs = [(t["query"], docs[j]["text"]) for t, row in zip(test, top) for j in row]
    scores = score_pairs(pairs).reshape(len(test), candidates)
    for t, row, s in zip(test, top, scores):
        target = doc_index[t["positive_doc_id"]]
        hits_retrieve += target in row[:3]
        hits_rerank += target in row[np.argsort(-s)][:3]
        in_pool += target in row
    n = len(test)
    return {
        "queries": n,
        "candidates": candidates,
        "recall@3_retrieve_only": round(hits_retrieve / n, 4),
        "recall@3_retrieve_then_rerank": round(hits_rerank / n, 4),
        f"recall@{candidates}_candidate_pool": round(in_pool / n, 4),
    }
