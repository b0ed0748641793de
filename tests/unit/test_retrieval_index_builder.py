"""build_index / load_index with the FAISS backend: self-retrieval, manifest, skip-on-unchanged-hash."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from model_repository.index.builder import build_index, content_hash
from server.retrieval.index_loader import load_index, read_manifest

pytestmark = pytest.mark.L0

DIM = 64


class WhitespaceTokenizer:
    class _Encoding:
        def __init__(self, offsets):
            self.ids, self.offsets = list(range(len(offsets))), offsets

    def encode(self, text: str):
        return self._Encoding([m.span() for m in re.finditer(r"\S+", text)])


class CountingEmbedder:
    """Deterministic bag-of-hashed-words embedding (L2-normalised); counts the texts it embedded."""

    def __init__(self) -> None:
        self.calls = 0
        self.texts = 0

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), DIM), np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.fixture
def documents(tmp_path):
    path = tmp_path / "documents.jsonl"
    records = [
        {"doc_id": "prod-B0AAAAAAA1", "source_type": "product", "asin": "B0AAAAAAA1",
         "text": "Moonlit Ronin Vol. 1 by Aki Sato. Tankobon, English, teen. " * 30},
        {"doc_id": "prod-B0AAAAAAA2", "source_type": "product", "asin": "B0AAAAAAA2",
         "text": "Harbor Witch omnibus edition collects volumes one to three."},
        {"doc_id": "policy-returns-1", "source_type": "policy", "asin": None,
         "text": "Returns are accepted within 30 days of delivery for unopened items. " * 50},
        {"doc_id": "review-B0AAAAAAA2", "source_type": "review", "asin": "B0AAAAAAA2",
         "text": "Readers love the atmospheric art and slow burn plot."},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_build_then_self_retrieval_and_manifest(tmp_path, documents) -> None:
    embed = CountingEmbedder()
    out = tmp_path / "index"
    index = build_index(documents, WhitespaceTokenizer(), embed, out, batch_size=3, progress=False)
    manifest = read_manifest(out)
    assert manifest["chunks_count"] == len(index) == embed.texts
    assert manifest["chunks_by_source_type"]["policy"] >= 2  # 550 words > one 512-token chunk
    assert manifest["dim"] == DIM and manifest["backend"] == "faiss"
    assert embed.calls == -(-embed.texts // 3)  # batched by batch_size
    for chunk in index.chunks:
        top = index.search(embed([chunk.text])[0], k=1)[0]
        assert top.score == pytest.approx(1.0, abs=1e-5)
    loaded = load_index("faiss", out)
    assert loaded.chunks == index.chunks


def test_second_build_with_same_inputs_is_skipped(tmp_path, documents) -> None:
    out = tmp_path / "index"
    first = CountingEmbedder()
    build_index(documents, WhitespaceTokenizer(), first, out, progress=False, embedder_id="m1")
    stamp = (out / "manifest.json").read_text()
    second = CountingEmbedder()
    again = build_index(documents, WhitespaceTokenizer(), second, out, progress=False, embedder_id="m1")
    assert second.calls == 0
    assert len(again) == first.texts
    assert (out / "manifest.json").read_text() == stamp

    # Anything that changes the index forces a rebuild: the embedder id, the documents, force=True.
    third = CountingEmbedder()
    build_index(documents, WhitespaceTokenizer(), third, out, progress=False, embedder_id="m2")
    assert third.calls > 0
    documents.write_text(documents.read_text().replace("slow burn", "fast paced"))
    fourth = CountingEmbedder()
    build_index(documents, WhitespaceTokenizer(), fourth, out, progress=False, embedder_id="m2")
    assert fourth.calls > 0
    fifth = CountingEmbedder()
    build_index(documents, WhitespaceTokenizer(), fifth, out, progress=False, embedder_id="m2", force=True)
    assert fifth.calls > 0


def test_missing_index_files_trigger_rebuild(tmp_path, documents) -> None:
    out = tmp_path / "index"
    build_index(documents, WhitespaceTokenizer(), CountingEmbedder(), out, progress=False)
    (out / "index.faiss").unlink()
    embed = CountingEmbedder()
    index = build_index(documents, WhitespaceTokenizer(), embed, out, progress=False)
    assert embed.calls > 0 and len(index) == embed.texts


def test_content_hash_depends_on_settings(documents) -> None:
    base = content_hash(documents)
    assert base == content_hash(documents)
    assert base != content_hash(documents, overlap=16)
    assert base != content_hash(documents, sizes={"product": 128, "policy": 512, "review": 128})
    assert base != content_hash(documents, embedder_id="adapter-v2")
    assert base != content_hash(documents, backend="milvus")


def test_embed_fn_contract_is_checked(tmp_path, documents) -> None:
    unnormalised = lambda texts: np.ones((len(texts), 4))  # noqa: E731
    with pytest.raises(ValueError, match="normalised"):
        build_index(documents, WhitespaceTokenizer(), unnormalised, tmp_path, progress=False)
    with pytest.raises(ValueError, match="shape"):
        build_index(documents, WhitespaceTokenizer(), lambda t: np.ones((1, 4)), tmp_path, progress=False)
    assert read_manifest(tmp_path) is None  # a failed build leaves no manifest behind


def test_unknown_kinds_rejected(tmp_path, documents) -> None:
    with pytest.raises(ValueError, match="backend"):
        build_index(documents, WhitespaceTokenizer(), CountingEmbedder(), tmp_path, backend="annoy")
    with pytest.raises(ValueError, match="kind"):
        load_index("annoy", tmp_path)
