"""L1: the ``hallucination_scorer`` ensemble (hallucination_tokenizer -> hallucination_scorer_onnx), laid
out by ``Builder.assemble`` from spec.py, served by the real tritonserver and called by the service's
:class:`~server.hallucination.scorer.TritonScoreFn`.

Only the three scorer models are assembled into a temporary repository, so this needs no full build. The
graph is the trained scorer when ``.build/models/hallucination_scorer`` exists; otherwise the reranker's
graph stands in (same contract: token tensors -> one logit), which proves the wiring, not the quality.
"""

from __future__ import annotations

import numpy as np
import pytest

from model_repository.build import Builder
from server.hallucination import HallucinationScorer, TritonScoreFn, onnx_score_fn
from server.triton_runtime import TritonServer
from tests.support.requirements import require

pytestmark = pytest.mark.L1

MODELS = ("hallucination_tokenizer", "hallucination_scorer_onnx", "hallucination_scorer")
PRODUCT = {
    "asin": "B0CHAINSW1", "title": "Chainsaw Man, Vol. 1", "series": "Chainsaw Man", "volume": 1,
    "author": "Tatsuki Fujimoto", "publisher": "VIZ Media", "format": "tankobon", "language": "English",
    "price": 9.99, "stock": 14, "release_date": "2020-09-01",
}


@pytest.fixture(scope="module")
def scorer_repo(tmp_path_factory):
    builder = Builder()
    artefact = "hallucination_scorer"
    if not (builder.models / artefact / "manifest.json").exists():
        artefact = "reranker"  # stand-in graph with the same contract
        if not (builder.models / artefact / "manifest.json").exists():
            require("build", False, "neither the hallucination scorer nor the reranker has been built")
    # the fp32 graph: row-for-row equality holds only where padding and batch-mates cannot change a row's
    # logits; the served INT8 variant quantises activations per batch tensor (its agreement is a build gate)
    served = builder.models / artefact / "onnx" / "model.fp32.onnx"
    if not served.exists():
        served = builder.served_onnx(artefact, "cpu")
    builder.served_onnx = lambda name, flavour="cpu": served  # type: ignore[method-assign]
    repo = builder.assemble("cpu", tmp_path_factory.mktemp("scorer_repo"), models=MODELS)
    return repo, served, builder.checkpoint


@pytest.fixture(scope="module")
def triton(scorer_repo):
    with TritonServer(scorer_repo[0], startup_timeout_s=120) as server:
        yield server


async def test_served_scorer_matches_onnx_runtime_row_for_row(triton, scorer_repo):
    _, onnx_path, checkpoint = scorer_repo
    sources = [f"Title: Chainsaw Man, Vol. {i % 5 + 1}\nPrice: ${9 + i % 7}.99\nAuthor: Tatsuki Fujimoto" for i in range(70)]
    claims = [f"Volume {i % 5 + 1} costs ${9 + (i * 3) % 7}.99." for i in range(70)]
    fn = TritonScoreFn(triton.grpc_url, timeout_s=30.0)
    try:
        served = await fn(sources, claims)  # 70 rows: two slices of the model's max batch (64)
    finally:
        await fn.close()
    local = await onnx_score_fn(str(onnx_path), str(checkpoint))(sources, claims)
    assert served.shape == (70,) and np.isfinite(served).all()
    np.testing.assert_allclose(served, local, atol=2e-3)  # bucket padding vs longest padding: same logits


async def test_answer_level_scoring_through_triton(triton):
    fn = TritonScoreFn(triton.grpc_url, timeout_s=30.0)
    try:
        result = await HallucinationScorer(fn).score(
            "Chainsaw Man, Vol. 1 (B0CHAINSW1) is $9.99. It was written by Tatsuki Fujimoto.", products=[PRODUCT]
        )
    finally:
        await fn.close()
    assert len(result.claims) == 2 and 0.0 <= result.score <= 1.0
