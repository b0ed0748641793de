"""Milvus-backed chunk index: Milvus Lite for a local ``*.db`` file, a Milvus cluster for a server URI.

The same :class:`pymilvus.MilvusClient` talks to both: ``MilvusIndex(".build/index/milvus.db")`` starts an
embedded Milvus Lite; ``MilvusIndex("http://milvus:19530", token=...)`` uses a cluster. The collection is
created on first use with a fixed schema (chunk_id primary key, doc_id, source_type, asin, text, vector)
and an inner-product index, and is loaded before it is searched.

Differences worth knowing:
- Milvus has no NULL in varchar fields (2.4), so ``asin=None`` is stored as ``""`` and mapped back.
- Milvus does not de-duplicate primary keys on ``insert``; :meth:`add` uses ``upsert`` so re-adding a
  chunk replaces it (the FAISS index, in contrast, appends).
- The index type defaults to FLAT (exact) on Milvus Lite and HNSW on a cluster.
- Calls are blocking gRPC calls; the serving path runs them through ``asyncio.to_thread``. One
  ``MilvusClient`` is safe to share between threads.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlparse

import numpy as np

from contracts.models import EMBED_DIM
from server.retrieval._compat import ensure_pkg_resources
from server.retrieval.base import Chunk, ScoredChunk

ensure_pkg_resources()
from pymilvus import DataType, MilvusClient  # noqa: E402  (needs the shim above on setuptools >= 81)

log = logging.getLogger(__name__)

DEFAULT_COLLECTION = "mangaassist_chunks"
_OUTPUT_FIELDS = ["chunk_id", "doc_id", "source_type", "asin", "text"]
_MAX_ID = 512
_MAX_TEXT = 65_535  # Milvus' varchar limit (bytes); chunk text is truncated to fit, with a warning
_INSERT_BATCH = 512
_SERVER_SCHEMES = {"http", "https", "tcp", "grpc", "unix"}


def is_server_uri(uri: str) -> bool:
    """True for a Milvus server/cluster URI, False for a Milvus Lite file path."""
    return urlparse(uri).scheme.lower() in _SERVER_SCHEMES


class MilvusIndex:
    """A :class:`~server.retrieval.base.VectorIndex` backed by a Milvus collection."""

    kind = "milvus"

    def __init__(
        self,
        uri: str,
        collection: str = DEFAULT_COLLECTION,
        dim: int = EMBED_DIM,
        *,
        token: str = "",
        metric: str = "IP",
        index_type: str | None = None,
        ef_search: int = 64,
        consistency_level: str = "Strong",
        timeout_s: float | None = None,
    ) -> None:
        """Connect and make sure the collection exists (created if missing) and is loaded.

        ``metric``: "IP" or "COSINE" (identical rankings for normalised vectors). ``consistency_level``:
        "Strong" makes rows visible to the next search right after :meth:`add` — use "Bounded" on a
        cluster serving a static index to skip waiting for the latest timestamp. An existing collection
        whose vector dimension differs from ``dim`` is an error (rebuild it with :meth:`reset`).
        """
        uri = str(uri)
        if metric not in ("IP", "COSINE"):
            raise ValueError(f"metric must be 'IP' or 'COSINE', got {metric!r}")
        if not is_server_uri(uri):
            if not uri.endswith(".db"):
                raise ValueError(f"a Milvus Lite path must end with '.db', got {uri!r}")
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        self.uri = uri
        self.collection = collection
        self.dim = dim
        self.metric = metric
        self.index_type = index_type or ("HNSW" if is_server_uri(uri) else "FLAT")
        self.ef_search = ef_search
        self.consistency_level = consistency_level
        self._timeout = timeout_s
        self._client = MilvusClient(uri=uri, token=token, timeout=timeout_s)
        self._ensure_collection()

    # ---- VectorIndex -------------------------------------------------------------------------------

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Upsert chunks with their vectors, then flush so they are persisted."""
        vectors = self._as_matrix(vectors, "vectors")
        if len(chunks) != vectors.shape[0]:
            raise ValueError(f"{len(chunks)} chunks but {vectors.shape[0]} vectors")
        if not chunks:
            return
        for start in range(0, len(chunks), _INSERT_BATCH):
            rows = [
                _row(chunk, vector)
                for chunk, vector in zip(
                    chunks[start : start + _INSERT_BATCH], vectors[start : start + _INSERT_BATCH]
                )
            ]
            self._client.upsert(self.collection, rows, timeout=self._timeout)
        self._client.flush(self.collection, timeout=self._timeout)

    def search(self, query: np.ndarray, k: int) -> list[ScoredChunk]:
        """Top-``k`` chunks for one query vector (shape ``(dim,)`` or ``(1, dim)``), best first."""
        query = np.asarray(query)
        if query.ndim == 2 and query.shape[0] != 1:
            raise ValueError(f"search takes one query, got shape {query.shape}; use search_many")
        return self.search_many(query.reshape(1, -1), k)[0]

    def search_many(
        self, queries: np.ndarray, k: int, *, filter: str = ""
    ) -> list[list[ScoredChunk]]:
        """Top-``k`` chunks for each row of ``queries``, best first per row.

        ``filter`` is a Milvus boolean expression over the scalar fields, e.g.
        ``'source_type == "policy"'``.
        """
        queries = self._as_matrix(queries, "queries")
        if k <= 0 or queries.shape[0] == 0:
            return [[] for _ in range(queries.shape[0])]
        params: dict[str, Any] = {"metric_type": self.metric}
        if self.index_type == "HNSW":
            params["params"] = {"ef": max(self.ef_search, k)}
        results = self._client.search(
            self.collection,
            data=queries.tolist(),
            filter=filter,
            limit=k,
            output_fields=_OUTPUT_FIELDS,
            search_params=params,
            timeout=self._timeout,
        )
        out: list[list[ScoredChunk]] = []
        for hits in results:
            scored = [ScoredChunk(_chunk(hit["entity"]), float(hit["distance"])) for hit in hits]
            scored.sort(key=lambda s: s.score, reverse=True)  # IP/COSINE: larger is closer
            out.append(scored)
        return out

    def __len__(self) -> int:
        rows = self._client.query(
            self.collection,
            filter="",
            output_fields=["count(*)"],
            consistency_level="Strong",
            timeout=self._timeout,
        )
        return int(rows[0]["count(*)"])

    # ---- lifecycle ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Drop the collection and create it empty (used by a full rebuild)."""
        if self._client.has_collection(self.collection, timeout=self._timeout):
            self._client.drop_collection(self.collection, timeout=self._timeout)
        self._ensure_collection()

    def close(self) -> None:
        """Release the connection (Milvus Lite stops its embedded server when the last one closes)."""
        self._client.close()

    def __enter__(self) -> MilvusIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals ---------------------------------------------------------------------------------

    def _ensure_collection(self) -> None:
        client, name = self._client, self.collection
        if client.has_collection(name, timeout=self._timeout):
            existing = _vector_dim(client.describe_collection(name, timeout=self._timeout))
            if existing != self.dim:
                raise ValueError(
                    f"Milvus collection {name!r} at {self.uri} has dim {existing}, expected {self.dim}"
                )
        else:
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=_MAX_ID)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=_MAX_ID)
            schema.add_field("source_type", DataType.VARCHAR, max_length=32)
            schema.add_field("asin", DataType.VARCHAR, max_length=32)
            schema.add_field("text", DataType.VARCHAR, max_length=_MAX_TEXT)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
            index_params = client.prepare_index_params()
            extra = {"M": 16, "efConstruction": 200} if self.index_type == "HNSW" else {}
            index_params.add_index(
                field_name="vector",
                index_type=self.index_type,
                metric_type=self.metric,
                params=extra,
            )
            client.create_collection(
                name,
                schema=schema,
                index_params=index_params,
                consistency_level=self.consistency_level,
                timeout=self._timeout,
            )
            log.info("created Milvus collection %s at %s (dim %d)", name, self.uri, self.dim)
        client.load_collection(name, timeout=self._timeout)

    def _as_matrix(self, x: np.ndarray, name: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{name} must have shape (n, {self.dim}), got {x.shape}")
        return x


def _row(chunk: Chunk, vector: np.ndarray) -> dict[str, Any]:
    text = chunk.text
    if len(text.encode("utf-8")) > _MAX_TEXT:
        log.warning("chunk %s text exceeds %d bytes; truncated in Milvus", chunk.chunk_id, _MAX_TEXT)
        text = text.encode("utf-8")[:_MAX_TEXT].decode("utf-8", errors="ignore")
    return {
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "source_type": chunk.source_type,
        "asin": chunk.asin or "",
        "text": text,
        "vector": vector.tolist(),
    }


def _chunk(entity: dict[str, Any]) -> Chunk:
    return Chunk(
        chunk_id=entity["chunk_id"],
        doc_id=entity["doc_id"],
        source_type=entity["source_type"],
        text=entity["text"],
        asin=entity["asin"] or None,
    )


def _vector_dim(description: dict[str, Any]) -> int | None:
    for field in description.get("fields", []):
        if field.get("name") == "vector":
            return int(field.get("params", {}).get("dim", 0))
    return None
