"""Realistic request payloads for every served model, as perf_analyzer ``--input-data`` JSON and as
in-process ONNX Runtime feeds (the ceiling).

* ensembles (the text-in entry points): ``TEXT`` strings / ``QUERY``+``PASSAGE`` pairs from ``<build>/data``;
* ``*_onnx`` models: the same texts tokenised exactly as the served tokenizer model does it (the tokenizer
  JSON from the repository, truncation at ``max_length``, zero padding up to the smallest bucket that fits),
  so each request carries the shape Triton would have batched by;
* ``embedding_adapter``: real base-space embeddings (``models/embedding_adapter/doc_vectors.npy``), or
  seeded random unit vectors when the build has none.

perf_analyzer input-data format: ``{"data": [{input: {"content": [...], "shape": [...]}}, ...]}``, one
entry per request (batch dimension excluded, batch size 1); perf_analyzer cycles through the entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks import common
from model_repository import spec

#: Which text workload feeds each text-in model (ensembles and the ONNX model behind each).
WORKLOAD_OF: dict[str, str] = {
    "intent_classifier": "intents",
    "intent_classifier_onnx": "intents",
    "query_embedder": "queries",
    "query_embedder_onnx": "queries",
    "reranker": "pairs",
    "reranker_onnx": "pairs",
}

Row = dict[str, np.ndarray]  # one request: input name -> array without the batch dimension


def tokenizer_for(model: str) -> spec.Tokenizer | None:
    """The served tokenizer in front of an ONNX model (None for models that take no tokens)."""
    for e in spec.ENSEMBLES:
        if e.model == model:
            return next(t for t in spec.TOKENIZERS if t.name == e.tokenizer)
    return None


def onnx_model_of(model: str) -> str:
    """The ONNX model that does the compute for ``model`` (an ensemble's second step, else itself)."""
    for e in spec.ENSEMBLES:
        if e.name == model:
            return e.model
    return model


def composing_models(model: str) -> tuple[str, ...]:
    """The models an ensemble schedules (tokenizer, ONNX model); empty for a plain model."""
    for e in spec.ENSEMBLES:
        if e.name == model:
            return (e.tokenizer, e.model)
    return ()


def bucket_for(length: int, buckets: Sequence[int]) -> int:
    """The smallest bucket >= ``length``; the largest when none fits (the tokenizer truncated already)."""
    ordered = sorted(buckets)
    return next((b for b in ordered if b >= length), ordered[-1])


@dataclass
class BucketTokenizer:
    """In-process twin of ``model_repository/backends/tokenizer_model.py``."""

    config: spec.Tokenizer
    tokenizer_json: Path

    def __post_init__(self) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(self.tokenizer_json))
        self._tok.enable_truncation(max_length=self.config.max_length)
        self._tok.no_padding()

    def encode(self, texts: Sequence[str] | Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
        """[n, bucket] int64 input_ids / attention_mask / token_type_ids, one bucket for the whole batch."""
        items = [tuple(t) for t in texts] if self.config.mode == "pair" else list(texts)
        encodings = self._tok.encode_batch(items)
        width = bucket_for(max(len(e.ids) for e in encodings), self.config.buckets)
        out = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in spec.TOKEN_INPUTS}
        for row, enc in enumerate(encodings):
            n = min(len(enc.ids), width)
            out["input_ids"][row, :n] = enc.ids[:n]
            out["attention_mask"][row, :n] = enc.attention_mask[:n]
            out["token_type_ids"][row, :n] = enc.type_ids[:n]
        return out


class Workloads:
    """Realistic inputs for every served model, from one build's data (and its Triton repository)."""

    def __init__(self, data_dir: Path, repo_dir: Path, models_dir: Path | None = None, *, limit: int = 256) -> None:
        self.data_dir = Path(data_dir)
        self.repo_dir = Path(repo_dir)
        self.models_dir = Path(models_dir) if models_dir else None
        self.limit = limit
        self._cache: dict[str, Any] = {}

    # ---------------------------------------------------------------- raw material
    def texts(self, workload: str) -> list[Any]:
        if workload not in self._cache:
            if workload == "intents":
                self._cache[workload] = common.intent_texts(self.data_dir, self.limit)
            elif workload == "queries":
                self._cache[workload] = common.queries(self.data_dir, self.limit)
            elif workload == "pairs":
                self._cache[workload] = common.query_passage_pairs(self.data_dir, self.limit)
            else:
                raise ValueError(f"unknown workload {workload!r}")
        return self._cache[workload]

    def embeddings(self, n: int | None = None) -> np.ndarray:
        n = n or self.limit
        path = self.models_dir / "embedding_adapter" / "doc_vectors.npy" if self.models_dir else None
        if path is not None and path.is_file():
            vecs = np.load(path, mmap_mode="r")
            idx = np.random.default_rng(0).choice(len(vecs), size=min(n, len(vecs)), replace=False)
            return np.ascontiguousarray(vecs[np.sort(idx)], dtype=np.float32)
        vecs = np.random.default_rng(0).standard_normal((n, spec.EMBED_DIM)).astype(np.float32)
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)

    def tokenizer(self, model: str) -> BucketTokenizer:
        cfg = tokenizer_for(model)
        if cfg is None:
            raise ValueError(f"{model} takes no token inputs")
        key = f"tok:{cfg.name}"
        if key not in self._cache:
            self._cache[key] = BucketTokenizer(cfg, self.repo_dir / cfg.name / "1" / "tokenizer.json")
        return self._cache[key]

    # ---------------------------------------------------------------- per-request rows
    def rows(self, model: str) -> list[Row]:
        """One input row per request, in the order perf_analyzer will send them."""
        if model == "embedding_adapter":
            return [{"EMBEDDING": v} for v in self.embeddings()]
        workload = WORKLOAD_OF.get(model)
        if workload is None:
            raise ValueError(f"no benchmark workload for model {model!r}")
        items = self.texts(workload)
        if model.endswith("_onnx"):
            tok = self.tokenizer(model)
            rows = []
            for item in items:  # one request = one text, padded to its own bucket (as the tokenizer model does)
                enc = tok.encode([item])
                rows.append({name: enc[name][0] for name in spec.TOKEN_INPUTS})
            return rows
        if workload == "pairs":
            return [{"QUERY": np.array([q], dtype=object), "PASSAGE": np.array([p], dtype=object)} for q, p in items]
        return [{"TEXT": np.array([t], dtype=object)} for t in items]

    def batch(self, model: str, size: int, offset: int = 0) -> dict[str, np.ndarray]:
        """A ``size``-row feed for the ONNX model itself (the ceiling): tokenised together, one bucket."""
        if model == "embedding_adapter":
            vecs = self.embeddings()
            return {"EMBEDDING": np.ascontiguousarray(np.resize(np.roll(vecs, -offset, axis=0), (size, vecs.shape[1])))}
        items = self.texts(WORKLOAD_OF[model])
        chunk = [items[(offset + i) % len(items)] for i in range(size)]
        return self.tokenizer(model).encode(chunk)


# ------------------------------------------------------------------------------------------ JSON
def _content(array: np.ndarray) -> list[Any]:
    flat = array.reshape(-1)
    if flat.dtype == object:
        return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in flat]
    if np.issubdtype(flat.dtype, np.floating):
        return [round(float(x), 6) for x in flat]
    return [int(x) for x in flat]


def input_data(rows: Sequence[Row]) -> dict[str, Any]:
    """perf_analyzer ``--input-data`` JSON for ``rows`` (explicit shapes, so no ``--shape`` is needed)."""
    if not rows:
        raise ValueError("no input rows: is the build's data directory empty?")
    return {
        "data": [
            {name: {"content": _content(np.asarray(arr)), "shape": list(np.asarray(arr).shape)} for name, arr in row.items()}
            for row in rows
        ]
    }


def write_input_data(rows: Sequence[Row], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(input_data(rows), ensure_ascii=False))
    return path
