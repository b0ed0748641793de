"""The chunk-size benchmark (benchmarks/chunk_sizes.py): its metric on hand-made hits, a smoke run over the real
documents and golden set with a stand-in embedder (the real ONNX run is the benchmark itself), and the decision
report's section built from its result file."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from benchmarks import chunk_sizes, common, decisions
from server.retrieval.base import Chunk
from tests.support.requirements import needs

pytestmark = pytest.mark.L0


def chunk(doc_id: str, n: int = 0) -> Chunk:
    return Chunk(chunk_id=f"{doc_id}#{n}", doc_id=doc_id, source_type=doc_id.split(":")[0], text=doc_id)


def test_recall_and_precision_at_3():
    queries = [{"expected": ["product:A"], "relevant": ["product:A", "review:A"]},
               {"expected": ["product:B", "policy:p"], "relevant": ["product:B", "policy:p", "review:B"]}]
    hits = [[chunk("product:A"), chunk("product:A", 1), chunk("review:A"), chunk("product:Z")],  # 4th is past k=3
            [chunk("policy:p"), chunk("product:Z"), chunk("review:Z")]]
    s = chunk_sizes.score(hits, queries)
    assert s["recall@3"] == pytest.approx((1 + 0.5) / 2)
    assert s["precision@3"] == pytest.approx((3 / 3 + 1 / 3) / 2, abs=1e-4)
    assert s["effective"] == pytest.approx(s["recall@3"] * s["precision@3"], abs=1e-4)


def test_golden_queries_carry_their_expected_documents():
    golden = [
        {"id": "a", "message": "is X vol 4 in stock", "intent": "product_question", "entity": {"asin": "B1", "carried": True}},
        {"id": "b", "message": "return window?", "intent": "return_refund", "entity": {"policy_id": "returns-window"}},
        {"id": "c", "message": "where is my order", "intent": "order_status", "entity": {"asin": "B1", "carried": True}},
        {"id": "d", "message": "do you carry Y", "intent": "product_question", "entity": {"asin": "B9", "carried": False}},
    ]
    qs = chunk_sizes.golden_queries(golden, {"B1"})
    assert [(q["id"], q["expected"]) for q in qs] == [("a", ["product:B1"]), ("b", ["policy:returns-window"])]
    assert qs[0]["relevant"] == ["product:B1", "review:B1"]


def words_embedder(texts):
    """A stand-in for the served embedder: hashed bag of words, L2-normalised (deterministic, fast)."""
    out = np.zeros((len(texts), 64), np.float32)
    for i, t in enumerate(texts):
        for w in re.findall(r"\w+", t.lower()):
            out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-6)


@needs("build", (common.DEFAULT_BUILD_DIR / "data" / "documents.jsonl").is_file()
       and (chunk_sizes.TRITON / "embed_tokenizer").is_dir(), "needs the built documents and embed tokenizer")
def test_smoke_run_on_the_real_documents(tmp_path):
    result = chunk_sizes.run(neighbours=1, distractors=20, embed=words_embedder, reuse_index=False, max_queries=40)
    rows = result["options"]
    assert set(rows) == {"128", "256", "512", "variable"} and result["queries"] == 40
    assert rows["128"]["chunks"] > rows["256"]["chunks"]  # product descriptions (126-185 tokens) split at 128
    assert rows["512"]["same_chunks_as"] == rows["variable"]["same_chunks_as"] == "256"  # every real document fits its size
    for r in rows.values():
        assert 0 < r["recall@3"] <= 1 and 0 < r["precision@3"] <= 1 and r["effective"] == pytest.approx(r["recall@3"] * r["precision@3"], abs=1e-4)
    rec = result["recommendation"]
    assert rows[rec["pick"]]["effective"] == max(r["effective"] for r in rows.values()) and "re-run" in rec["reversal_trigger"]
    assert "R@3 x P@3" in chunk_sizes.markdown(result, "python -m benchmarks.chunk_sizes")


def test_the_decision_report_reads_the_chunk_size_result(tmp_path):
    options = {"128": (0.6, 0.4), "256": (0.7, 0.38), "512": (0.7, 0.38), "variable": (0.7, 0.38)}
    data = {"queries": 10, "documents": 99, "recommendation": {"pick": "variable", "reversal_trigger": "re-run when ..."},
            "options": {k: {"recall@3": r, "precision@3": p, "effective": round(r * p, 4), "chunks": 5, "same_chunks_as": ""}
                        for k, (r, p) in options.items()}}
    path = tmp_path / "chunk_sizes.json"
    path.write_text(json.dumps(data))
    out = decisions.chunk_sizes(path)
    assert out["pick"] == "variable" and out["options"]["128"]["effective"] == pytest.approx(0.24)
    data["recommendation"]["pick"] = "128"  # a pick that is not the best is a stale or broken report
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError):
        decisions.chunk_sizes(path)
    assert decisions.chunk_sizes(tmp_path / "missing.json") is None
    assert [t["trigger"] for t in decisions.reversal_triggers()][:2] == ["tier_quality_drop", "misclassified_escalation"]
