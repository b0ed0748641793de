"""In-process FAISS index over L2-normalised chunk vectors (inner product == cosine similarity).

Exact search (``IndexFlatIP``) by default: the corpus is a few thousand chunks, where a flat scan takes a
fraction of a millisecond and has perfect recall. ``hnsw_m`` switches to ``IndexHNSWFlat`` for corpora
large enough to need it.

Concurrency: ``search``/``search_many`` only read the index and FAISS releases the GIL while searching,
so the serving path calls them through ``asyncio.to_thread`` and many may run at once. ``add`` and
``save`` are build-time operations and must not run concurrently with searches.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import faiss
import numpy as np

from server.retrieval.base import Chunk, ScoredChunk

INDEX_FILE = "index.faiss"
CHUNKS_FILE = "chunks.jsonl"
META_FILE = "faiss_meta.json"


class FaissIndex:
    """A :class:`~server.retrieval.base.VectorIndex` backed by FAISS."""

    kind = "faiss"

    def __init__(self, dim: int, *, hnsw_m: int | None = None, ef_search: int = 64) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.hnsw_m = hnsw_m
        self.ef_search = ef_search
        if hnsw_m is None:
            self._index: faiss.Index = faiss.IndexFlatIP(dim)
        else:
            self._index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self._index.hnsw.efConstruction = max(40, 2 * hnsw_m)
        self._chunks: list[Chunk] = []

    # ---- VectorIndex -------------------------------------------------------------------------------

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Append chunks with their vectors (one row per chunk, in the same order)."""
        vectors = self._as_matrix(vectors, "vectors")
        if len(chunks) != vectors.shape[0]:
            raise ValueError(f"{len(chunks)} chunks but {vectors.shape[0]} vectors")
        if not chunks:
            return
        self._index.add(vectors)
        self._chunks.extend(chunks)

    def search(self, query: np.ndarray, k: int) -> list[ScoredChunk]:
        """Top-``k`` chunks for one query vector (shape ``(dim,)`` or ``(1, dim)``), best first."""
        query = np.asarray(query)
        if query.ndim == 2 and query.shape[0] != 1:
            raise ValueError(f"search takes one query, got shape {query.shape}; use search_many")
        return self.search_many(query.reshape(1, -1), k)[0]

    def search_many(self, queries: np.ndarray, k: int) -> list[list[ScoredChunk]]:
        """Top-``k`` chunks for each row of ``queries`` (shape ``(m, dim)``), best first per row."""
        queries = self._as_matrix(queries, "queries")
        if k <= 0 or len(self._chunks) == 0:
            return [[] for _ in range(queries.shape[0])]
        k = min(k, len(self._chunks))
        if self.hnsw_m is None:
            scores, ids = self._index.search(queries, k)
        else:  # per-call parameters: no shared state is mutated, so concurrent searches stay safe
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
            scores, ids = self._index.search(queries, k, params=params)
        return [
            [ScoredChunk(self._chunks[i], float(s)) for s, i in zip(row_s, row_i) if i >= 0]
            for row_s, row_i in zip(scores, ids)
        ]

    def __len__(self) -> int:
        return len(self._chunks)

    # ---- extras ------------------------------------------------------------------------------------

    @property
    def chunks(self) -> Sequence[Chunk]:
        """The indexed chunks, in insertion order (row ``i`` of the index is ``chunks[i]``)."""
        return tuple(self._chunks)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``index.faiss``, ``chunks.jsonl`` and ``faiss_meta.json`` into ``directory``.

        Each file is written to a temporary name and renamed into place.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tmp_index = directory / f".{INDEX_FILE}.tmp"
        faiss.write_index(self._index, str(tmp_index))
        os.replace(tmp_index, directory / INDEX_FILE)
        _atomic_write(
            directory / CHUNKS_FILE,
            "".join(json.dumps(asdict(c), ensure_ascii=False) + "\n" for c in self._chunks),
        )
        meta = {
            "kind": self.kind,
            "dim": self.dim,
            "metric": "inner_product",
            "hnsw_m": self.hnsw_m,
            "ef_search": self.ef_search,
            "count": len(self._chunks),
        }
        _atomic_write(directory / META_FILE, json.dumps(meta, indent=2) + "\n")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> FaissIndex:
        """Load an index written by :meth:`save`; checks the chunk metadata matches the vectors."""
        directory = Path(directory)
        meta = json.loads((directory / META_FILE).read_text())
        index = faiss.read_index(str(directory / INDEX_FILE))
        with open(directory / CHUNKS_FILE, encoding="utf-8") as f:
            chunks = [Chunk(**json.loads(line)) for line in f if line.strip()]
        if index.ntotal != len(chunks) or index.d != meta["dim"]:
            raise ValueError(
                f"corrupt FAISS index in {directory}: {index.ntotal} vectors of dim {index.d}, "
                f"{len(chunks)} chunks, meta dim {meta['dim']}"
            )
        self = cls(meta["dim"], hnsw_m=meta.get("hnsw_m"), ef_search=meta.get("ef_search", 64))
        self._index = index
        self._chunks = chunks
        return self

    def _as_matrix(self, x: np.ndarray, name: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{name} must have shape (n, {self.dim}), got {x.shape}")
        return np.ascontiguousarray(x)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
