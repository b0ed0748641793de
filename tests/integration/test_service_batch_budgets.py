"""L0: the batch RPCs' budgets fit the batch (issue 11 #4). A chat's stage budgets are sized for one text
(classify 50 ms) and ``rerank_top_n`` pairs; Classify and Retrieve follow the caller's gRPC deadline and,
without one, widen the stage by ``budgets.classify_per_text_ms`` / ``rerank_per_pair_ms`` per extra row.

The fake backend here costs time per row (like a real model), so a 64-text batch outlasts the chat's 50 ms
classify budget: before the fix ``mangaassist classify --file`` failed on a 96-line file at its default batch.
"""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from mangaassist.v1 import mangaassist_pb2 as pb
from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

from fakes import FakeIndex
from server.backends.fake import FakeBackend
from server.errors import BackendTimeout
from server.retrieval.base import Chunk
from tests.support.cli_runs import classify_file

pytestmark = pytest.mark.L0

#: per row, so a 64-text batch takes ~130 ms: well past the chat's 50 ms classify budget
ROW_S = 0.002


class RowCostBackend(FakeBackend):
    """The fake models, at ``row_s`` seconds per text or pair (cut at ``timeout_s`` like a real client)."""

    def __init__(self, row_s: float = ROW_S) -> None:
        super().__init__()
        self.row_s = row_s
        self.timeouts: dict[str, list[float]] = {"classify": [], "rerank": []}

    async def _cost(self, method: str, rows: int, timeout_s: float) -> None:
        self.timeouts[method].append(timeout_s)
        try:
            await asyncio.wait_for(asyncio.sleep(self.row_s * rows), timeout=timeout_s)
        except asyncio.TimeoutError:
            raise BackendTimeout(f"{method} took longer than {timeout_s:.3f}s", model=method) from None

    async def classify(self, texts, *, timeout_s: float) -> np.ndarray:
        await self._cost("classify", len(texts), timeout_s)
        return await super().classify(texts, timeout_s=timeout_s)

    async def rerank(self, query, passages, *, timeout_s: float) -> np.ndarray:
        await self._cost("rerank", len(passages), timeout_s)
        return await super().rerank(query, passages, timeout_s=timeout_s)


@pytest.fixture
def backend() -> RowCostBackend:
    return RowCostBackend()


def _texts(n: int) -> list[str]:
    """Messages the rule fast path leaves to the classifier."""
    return [f"is volume {i} of the dungeon cooking series still in print" for i in range(n)]


async def test_cli_classifies_a_96_line_file_at_its_default_batch(server, backend, tmp_path):
    rc, lines = await classify_file(server.target, _texts(96), tmp_path)
    assert rc == 0
    assert len(lines) == 96 and all(line["intent"] for line in lines)
    assert len(backend.timeouts["classify"]) == 2  # batches of 64 + 32, each given the CLI's deadline
    assert min(backend.timeouts["classify"]) > 5.0


async def test_classify_without_a_deadline_gets_a_stage_budget_scaled_to_its_batch(server, backend):
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = pb_grpc.MangaAssistStub(channel)
        reply = await stub.Classify(pb.ClassifyRequest(texts=_texts(64)))  # no deadline
        assert len(reply.results) == 64
        one = await stub.Classify(pb.ClassifyRequest(texts=_texts(1)))
        assert len(one.results) == 1
    per_text = server.settings.budgets.classify_per_text_ms
    wide, single = backend.timeouts["classify"]
    assert wide == pytest.approx((server.settings.budgets.classify_ms + 63 * per_text) / 1000, rel=0.05)
    assert single == pytest.approx(server.settings.budgets.classify_ms / 1000, rel=0.05)  # a chat's, unchanged


async def test_scaled_budget_still_cuts_a_batch_that_outruns_it(server, backend):
    backend.row_s = 0.05  # 64 texts: 3.2 s against 50 + 63 x 10 ms
    async with grpc.aio.insecure_channel(server.target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.MangaAssistStub(channel).Classify(pb.ClassifyRequest(texts=_texts(64)))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_chat_keeps_its_own_classify_budget_under_a_long_deadline(server, backend, aclient):
    backend.row_s = 0.08  # one text outlasts the chat's 50 ms classify budget: the chat degrades, as before
    reply = await aclient.chat("is volume 3 of the dungeon cooking series still in print", session_id="s-chat")
    assert "classifier_unavailable" in reply.degraded
    assert backend.timeouts["classify"][0] <= 0.05


async def test_retrieve_reranks_fifty_candidates_under_the_callers_deadline(make_server, backend, aclient_for):
    chunks = [Chunk(f"c{i}", f"d{i}", "review", f"review {i} of the dungeon cooking series volume {i}", None)
              for i in range(60)]
    running = await make_server(index=FakeIndex(chunks=chunks, backend=backend))
    backend.row_s = 0.004  # 50 pairs: 200 ms against the chat's 100 ms rerank budget
    async with aclient_for(running) as client:
        reply = await client.retrieve("dungeon cooking series reviews", top_k=50, timeout=10.0)
    assert reply.reranked and "rerank_skipped" not in reply.degraded
    assert len(reply.chunks) == 50


@pytest.fixture
def aclient_for():
    from clients.sdk import AsyncMangaAssistClient

    return lambda running: AsyncMangaAssistClient(running.target, timeout=5.0)


async def test_rerank_probe_interval_comes_from_the_budgets(make_server):
    running = await make_server(budgets={"rerank_probe_after_s": 0.5})
    assert running.pipeline.rerank_estimate.probe_after_s == 0.5
