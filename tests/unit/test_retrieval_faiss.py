"""FaissIndex: exact recovery, ordering, batch search, save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest

from server.retrieval.base import Chunk, VectorIndex
from server.retrieval.faiss_index import FaissIndex

pytestmark = pytest.mark.L0

DIM = 32


def _unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _chunks(n: int) -> list[Chunk]:
    types = ("product", "policy", "review")
    return [
        Chunk(
            chunk_id=f"doc-{i}#0",
            doc_id=f"doc-{i}",
            source_type=types[i % 3],
            text=f"chunk text {i}",
            asin=None if i % 3 == 1 else f"B0{i:08d}",
        )
        for i in range(n)
    ]


@pytest.fixture
def corpus() -> tuple[list[Chunk], np.ndarray]:
    rng = np.random.default_rng(7)
    return _chunks(300), _unit(rng, 300)


def test_exact_top1_recovers_own_chunk(corpus) -> None:
    chunks, vectors = corpus
    index = FaissIndex(DIM)
    index.add(chunks, vectors)
    as_protocol: VectorIndex = index  # structural: FaissIndex satisfies the protocol
    assert len(as_protocol) == 300
    for i in (0, 1, 150, 299):
        top = index.search(vectors[i], k=1)
        assert top[0].chunk == chunks[i]
        assert top[0].score == pytest.approx(1.0, abs=1e-5)
        assert top[0].reranked is False


def test_results_sorted_desc_and_match_brute_force(corpus) -> None:
    chunks, vectors = corpus
    index = FaissIndex(DIM)
    index.add(chunks, vectors)
    query = _unit(np.random.default_rng(1), 1)[0]
    hits = index.search(query, k=10)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    expected = vectors @ query
    assert scores == pytest.approx(sorted(expected, reverse=True)[:10], abs=1e-5)
    assert {h.chunk.chunk_id for h in hits} == {chunks[i].chunk_id for i in np.argsort(-expected)[:10]}


def test_search_many_equals_single_searches(corpus) -> None:
    chunks, vectors = corpus
    index = FaissIndex(DIM)
    index.add(chunks, vectors)
    queries = _unit(np.random.default_rng(2), 5)
    batch = index.search_many(queries, k=4)
    assert len(batch) == 5
    for q, hits in zip(queries, batch):
        assert [h.chunk.chunk_id for h in hits] == [h.chunk.chunk_id for h in index.search(q, k=4)]


def test_k_edge_cases(corpus) -> None:
    chunks, vectors = corpus
    index = FaissIndex(DIM)
    assert index.search(vectors[0], k=3) == []  # empty index
    index.add(chunks[:5], vectors[:5])
    assert len(index.search(vectors[0], k=50)) == 5  # never padded with missing (-1) rows
    assert index.search(vectors[0], k=0) == []


def test_shape_validation(corpus) -> None:
    chunks, vectors = corpus
    index = FaissIndex(DIM)
    with pytest.raises(ValueError, match="chunks but"):
        index.add(chunks[:3], vectors[:4])
    with pytest.raises(ValueError, match="shape"):
        index.add(chunks[:3], vectors[:3, :10])
    index.add(chunks[:3], vectors[:3])
    with pytest.raises(ValueError, match="search_many"):
        index.search(vectors[:2], k=1)


def test_save_load_round_trip(tmp_path, corpus) -> None:
    chunks, vectors = corpus
    index = FaissIndex(DIM)
    index.add(chunks, vectors)
    index.save(tmp_path / "idx")
    loaded = FaissIndex.load(tmp_path / "idx")
    assert len(loaded) == len(index) and loaded.dim == DIM
    assert loaded.chunks == index.chunks  # asin None survives the JSON round trip
    queries = _unit(np.random.default_rng(3), 4)
    for a, b in zip(index.search_many(queries, 5), loaded.search_many(queries, 5)):
        assert [(h.chunk, round(h.score, 6)) for h in a] == [(h.chunk, round(h.score, 6)) for h in b]


def test_load_detects_mismatched_metadata(tmp_path, corpus) -> None:
    chunks, vectors = corpus
    index = FaissIndex(DIM)
    index.add(chunks[:10], vectors[:10])
    index.save(tmp_path)
    lines = (tmp_path / "chunks.jsonl").read_text().splitlines()
    (tmp_path / "chunks.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError, match="corrupt"):
        FaissIndex.load(tmp_path)


def test_hnsw_variant_recovers_own_chunk_and_round_trips(tmp_path, corpus) -> None:
    chunks, vectors = corpus
    index = FaissIndex(DIM, hnsw_m=16)
    index.add(chunks, vectors)
    hits = sum(index.search(vectors[i], 1)[0].chunk == chunks[i] for i in range(0, 300, 10))
    assert hits >= 29  # approximate, but self-queries are easy
    index.save(tmp_path)
    loaded = FaissIndex.load(tmp_path)
    assert loaded.hnsw_m == 16
    assert loaded.search(vectors[5], 3)[0].chunk == index.search(vectors[5], 3)[0].chunk
