"""MilvusIndex against a real Milvus Lite (temporary .db file): same answers as exact FAISS.

Milvus Lite starts an embedded server process (~2 s). If it cannot start on a machine, these tests are
skipped with the reason; under CI, or with MANGAASSIST_REQUIRE_MILVUS=1, that is a failure instead
(tests/support/requirements.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from server.retrieval.base import Chunk
from server.retrieval.faiss_index import FaissIndex
from tests.support.requirements import require

pytestmark = pytest.mark.L0

DIM = 24


@pytest.fixture(scope="module")
def milvus_db(tmp_path_factory):
    """Path of a Milvus Lite database whose embedded server is known to start."""
    path = str(tmp_path_factory.mktemp("milvus") / "test.db")
    try:
        from server.retrieval.milvus_index import MilvusClient

        probe = MilvusClient(uri=path)
        probe.list_collections()
    except Exception as err:  # noqa: BLE001 — any failure to start Milvus Lite means "not available here"
        require("milvus-lite", False, f"Milvus Lite did not start: {err!r}")
    yield path
    probe.close()


@pytest.fixture
def make_index(milvus_db, request):
    from server.retrieval.milvus_index import MilvusIndex

    opened: list[MilvusIndex] = []

    def make(dim: int = DIM, collection: str | None = None) -> MilvusIndex:
        name = collection or f"t_{request.node.name}".replace("[", "_").replace("]", "")[:60]
        index = MilvusIndex(milvus_db, collection=name, dim=dim)
        opened.append(index)
        return index

    yield make
    for index in opened:
        index.reset()


def _unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _chunks(n: int) -> list[Chunk]:
    types = ("product", "policy", "review")
    return [
        Chunk(f"doc-{i}#{i % 2}", f"doc-{i}", types[i % 3], f"text {i} — naïve “quotes”",
              None if i % 3 == 1 else f"B0{i:08d}")
        for i in range(n)
    ]  # fmt: skip


def _assert_same_topk(a, b, k: int) -> None:
    """Same ranking up to ties: scores agree; ids agree wherever scores are not (near) tied."""
    assert len(a) == len(b) == k
    sa, sb = [h.score for h in a], [h.score for h in b]
    assert sa == pytest.approx(sb, abs=1e-4)
    boundary = sa[-1] + 1e-4
    assert {h.chunk.chunk_id for h in a if h.score > boundary} == {
        h.chunk.chunk_id for h in b if h.score > boundary
    }


def test_same_topk_as_faiss(make_index) -> None:
    rng = np.random.default_rng(11)
    chunks, vectors = _chunks(400), _unit(rng, 400)
    faiss_index = FaissIndex(DIM)
    faiss_index.add(chunks, vectors)
    milvus = make_index()
    milvus.add(chunks, vectors)
    assert len(milvus) == 400
    queries = _unit(rng, 8)
    for qa, qb in zip(faiss_index.search_many(queries, 10), milvus.search_many(queries, 10)):
        _assert_same_topk(qa, qb, 10)
    # Single search, own chunk first, metadata (asin None, unicode text) intact.
    top = milvus.search(vectors[4], k=3)
    assert top[0].chunk == chunks[4]
    assert top[0].score == pytest.approx(1.0, abs=1e-4)
    assert [h.score for h in top] == sorted((h.score for h in top), reverse=True)


def test_ties_are_allowed(make_index) -> None:
    rng = np.random.default_rng(5)
    base = _unit(rng, 3)
    vectors = np.repeat(base, 4, axis=0)  # each vector four times: ties everywhere
    chunks = _chunks(12)
    milvus = make_index()
    milvus.add(chunks, vectors)
    faiss_index = FaissIndex(DIM)
    faiss_index.add(chunks, vectors)
    _assert_same_topk(faiss_index.search(base[0], 4), milvus.search(base[0], 4), 4)
    assert {h.chunk.chunk_id for h in milvus.search(base[0], 4)} == {c.chunk_id for c in chunks[:4]}


def test_upsert_is_idempotent_and_filter(make_index) -> None:
    rng = np.random.default_rng(3)
    chunks, vectors = _chunks(30), _unit(rng, 30)
    milvus = make_index()
    milvus.add(chunks, vectors)
    milvus.add(chunks[:10], vectors[:10])  # same primary keys: replaced, not duplicated
    assert len(milvus) == 30
    hits = milvus.search_many(vectors[:1], 5, filter='source_type == "policy"')[0]
    assert hits and all(h.chunk.source_type == "policy" for h in hits)
    assert milvus.search(vectors[0], 0) == []


def test_reopen_and_dim_mismatch(make_index, milvus_db) -> None:
    from server.retrieval.milvus_index import MilvusIndex

    rng = np.random.default_rng(4)
    milvus = make_index(collection="reopen")
    milvus.add(_chunks(5), _unit(rng, 5))
    again = MilvusIndex(milvus_db, collection="reopen", dim=DIM)
    assert len(again) == 5
    with pytest.raises(ValueError, match="dim"):
        MilvusIndex(milvus_db, collection="reopen", dim=DIM + 1)


def test_bad_lite_path_rejected() -> None:
    from server.retrieval.milvus_index import MilvusIndex

    with pytest.raises(ValueError, match=r"\.db"):
        MilvusIndex("/tmp/not-a-db-file.sqlite")


def test_build_index_milvus_backend_and_load(milvus_db, tmp_path) -> None:
    from model_repository.index.builder import build_index
    from server.retrieval.index_loader import load_index

    docs = tmp_path / "documents.jsonl"
    docs.write_text(
        "".join(
            json.dumps({"doc_id": f"d{i}", "source_type": "review", "text": f"word{i} " * 20, "asin": None})
            + "\n"
            for i in range(6)
        )
    )

    def embed(texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 8), np.float32)
        for row, t in enumerate(texts):
            out[row, int(t.split()[0].removeprefix("word")) % 8] = 1.0  # one-hot per document
        return out

    out = tmp_path / "index"
    built = build_index(docs, _Ws(), embed, out, backend="milvus", milvus_uri=milvus_db,
                        progress=False, collection="built")  # fmt: skip
    assert len(built) == 6
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backend"] == "milvus" and manifest["collection"] == "built"
    loaded = load_index("milvus", out)  # the manifest names the URI and collection
    assert len(loaded) == 6
    query = embed(["word3 " * 20])[0]
    top = loaded.search(query, 1)[0]
    assert top.chunk.chunk_id == "d3#0" and top.score == pytest.approx(1.0, abs=1e-4)
    # Unchanged inputs: skipped (embed is never called).
    again = build_index(docs, _Ws(), _explode, out, backend="milvus", milvus_uri=milvus_db,
                        progress=False, collection="built")  # fmt: skip
    assert len(again) == 6
    loaded.reset()


def _explode(texts: list[str]) -> np.ndarray:
    raise AssertionError("embed_fn called although the inputs did not change")


class _Ws:
    class _E:
        def __init__(self, offsets):
            self.ids, self.offsets = list(range(len(offsets))), offsets

    def encode(self, text: str):
        import re

        return self._E([m.span() for m in re.finditer(r"\S+", text)])
