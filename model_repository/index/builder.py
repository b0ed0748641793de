"""Build the retrieval index from ``documents.jsonl``: chunk → embed (batched) → FAISS or Milvus.

Build side only: the service opens what this writes with ``server/retrieval/index_loader.py``
(``load_index``), through the same index classes (``FaissIndex.save``/``load``), so the on-disk layout
is defined once.

A build writes ``manifest.json`` into ``out_dir`` *last*, carrying a content hash of everything that
determines the index (documents file bytes, tokenizer, chunk sizes/overlap, backend, embedder id). A
second ``build_index`` with the same inputs finds a matching manifest, loads the existing index and skips
the work. A half-finished build never leaves a matching manifest behind (the old one is removed first).

The embedder cannot be hashed from a callable: pass ``embedder_id`` (e.g. the ONNX file's sha256, or
model name + version) so that a new encoder/adapter forces a rebuild.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from tqdm.auto import tqdm

from model_repository.index.chunking import DEFAULT_OVERLAP, DEFAULT_SIZES, chunk_documents
from server.retrieval.base import Chunk, VectorIndex
from server.retrieval.index_loader import MANIFEST, load_index

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
EmbedFn = Callable[[list[str]], np.ndarray]


def content_hash(
    documents_jsonl: str | os.PathLike[str],
    *,
    tokenizer: Any = None,
    sizes: Mapping[str, int] = DEFAULT_SIZES,
    overlap: int = DEFAULT_OVERLAP,
    backend: str = "faiss",
    embedder_id: str = "",
    extra: Mapping[str, Any] | None = None,
) -> str:
    """sha256 over the documents file bytes and every setting that changes the built index."""
    h = hashlib.sha256()
    with open(documents_jsonl, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    settings = {
        "manifest_version": MANIFEST_VERSION,
        "tokenizer": _tokenizer_fingerprint(tokenizer),
        "sizes": dict(sorted(sizes.items())),
        "overlap": overlap,
        "backend": backend,
        "embedder_id": embedder_id,
        "extra": dict(extra or {}),
    }
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()


def build_index(
    documents_jsonl: str | os.PathLike[str],
    tokenizer: Any,
    embed_fn: EmbedFn,
    out_dir: str | os.PathLike[str],
    backend: str = "faiss",
    milvus_uri: str | None = None,
    batch_size: int = 64,
    progress: bool = True,
    *,
    sizes: Mapping[str, int] = DEFAULT_SIZES,
    overlap: int = DEFAULT_OVERLAP,
    embedder_id: str = "",
    collection: str | None = None,
    force: bool = False,
) -> VectorIndex:
    """Chunk, embed and index ``documents_jsonl``; returns the (possibly reused) index.

    ``embed_fn(texts) -> (len(texts), dim) float32``, rows L2-normalised (checked). ``backend="faiss"``
    saves into ``out_dir``; ``backend="milvus"`` writes to ``milvus_uri`` (default: the Milvus Lite file
    ``out_dir/milvus.db``), dropping and recreating the collection. ``out_dir`` always receives
    ``chunks.jsonl`` (one Chunk per line, for evaluation/debugging) and ``manifest.json``.
    """
    if backend not in ("faiss", "milvus"):
        raise ValueError(f"backend must be 'faiss' or 'milvus', got {backend!r}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    extra: dict[str, Any] = {}
    if backend == "milvus":
        from server.retrieval.milvus_index import DEFAULT_COLLECTION

        milvus_uri = milvus_uri or str(out_dir / "milvus.db")
        collection = collection or DEFAULT_COLLECTION
        extra = {"milvus_uri": milvus_uri, "collection": collection}
    digest = content_hash(
        documents_jsonl,
        tokenizer=tokenizer,
        sizes=sizes,
        overlap=overlap,
        backend=backend,
        embedder_id=embedder_id,
        extra=extra,
    )

    manifest_path = out_dir / MANIFEST
    if not force:
        reused = _reuse(manifest_path, digest)
        if reused is not None:
            log.info("index in %s is up to date (hash %s); build skipped", out_dir, digest[:12])
            return reused
    manifest_path.unlink(missing_ok=True)  # a crash from here on must not look like a finished build

    started = time.perf_counter()
    with open(documents_jsonl, encoding="utf-8") as f:
        docs = [json.loads(line) for line in f if line.strip()]
    chunks = chunk_documents(docs, tokenizer, sizes=sizes, overlap=overlap)
    if not chunks:
        raise ValueError(f"{documents_jsonl} produced no chunks")
    vectors = _embed_all([c.text for c in chunks], embed_fn, batch_size, progress)
    dim = int(vectors.shape[1])

    index: VectorIndex
    if backend == "faiss":
        from server.retrieval.faiss_index import FaissIndex

        index = FaissIndex(dim)
        index.add(chunks, vectors)
        index.save(out_dir)
    else:
        from server.retrieval.milvus_index import MilvusIndex

        index = MilvusIndex(milvus_uri, collection=collection, dim=dim)
        index.reset()
        index.add(chunks, vectors)
        _write_chunks(out_dir / "chunks.jsonl", chunks)

    by_type: dict[str, int] = {}
    for c in chunks:
        by_type[c.source_type] = by_type.get(c.source_type, 0) + 1
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "input_hash": digest,
        "backend": backend,
        "documents": str(documents_jsonl),
        "documents_count": len(docs),
        "chunks_count": len(chunks),
        "chunks_by_source_type": by_type,
        "dim": dim,
        "sizes": dict(sizes),
        "overlap": overlap,
        "embedder_id": embedder_id,
        "milvus_uri": milvus_uri,
        "collection": collection,
        "build_seconds": round(time.perf_counter() - started, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = manifest_path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, manifest_path)
    log.info("built %s index: %d chunks from %d documents", backend, len(chunks), len(docs))
    return index


# ---- internals -------------------------------------------------------------------------------------


def _reuse(manifest_path: Path, digest: str) -> VectorIndex | None:
    """The existing index when the manifest matches ``digest`` and the index opens with the same size."""
    try:
        manifest = json.loads(manifest_path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if manifest.get("input_hash") != digest:
        return None
    try:
        index = load_index(manifest["backend"], manifest_path.parent)
    except (OSError, ValueError, KeyError, RuntimeError) as err:  # missing/corrupt files: rebuild
        log.warning("manifest matches but the index does not open (%s); rebuilding", err)
        return None
    if len(index) != manifest.get("chunks_count"):
        log.warning(
            "index has %d chunks, manifest says %s; rebuilding", len(index), manifest.get("chunks_count")
        )
        return None
    return index


def _embed_all(texts: list[str], embed_fn: EmbedFn, batch_size: int, progress: bool) -> np.ndarray:
    parts: list[np.ndarray] = []
    with tqdm(total=len(texts), desc="embedding chunks", unit="chunk", disable=not progress) as bar:
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            out = np.asarray(embed_fn(batch), dtype=np.float32)
            if out.ndim != 2 or out.shape[0] != len(batch):
                raise ValueError(
                    f"embed_fn returned shape {out.shape} for {len(batch)} texts; expected (n, dim)"
                )
            norms = np.linalg.norm(out, axis=1)
            if not np.allclose(norms, 1.0, atol=1e-3):
                raise ValueError(
                    f"embed_fn must return L2-normalised rows (norms {norms.min():.4f}..{norms.max():.4f})"
                )
            parts.append(out)
            bar.update(len(batch))
    return np.concatenate(parts, axis=0)


def _write_chunks(path: Path, chunks: list[Chunk]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for c in chunks:
            f.write(json.dumps(asdict(c), ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def _tokenizer_fingerprint(tokenizer: Any) -> str:
    if tokenizer is None:
        return ""
    to_str = getattr(tokenizer, "to_str", None)
    if callable(to_str):
        return hashlib.sha256(to_str().encode()).hexdigest()
    return f"{type(tokenizer).__module__}.{type(tokenizer).__qualname__}"
