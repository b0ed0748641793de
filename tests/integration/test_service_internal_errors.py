"""An internal error's text never reaches the caller; the log has it under the request id the caller
can quote (issue 10). Unknown exceptions keep the plain "internal error" (test_service_reliability.py)."""

from __future__ import annotations

import logging

import grpc
import numpy as np
import pytest
from mangaassist.v1 import mangaassist_pb2 as pb
from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

pytestmark = pytest.mark.L0


async def test_a_broken_invariant_is_internal_without_its_text_and_logged_with_the_request_id(make_server, backend, caplog):
    async def wrong_rows(texts, *, timeout_s):
        return np.zeros((len(texts) + 1, 8), np.float32)

    server = await make_server()
    backend.classify = wrong_rows  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="server.interceptors"):
        async with grpc.aio.insecure_channel(server.target) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await pb_grpc.MangaAssistStub(channel).Classify(
                    pb.ClassifyRequest(texts=["recommend something"]), metadata=(("x-request-id", "req-bug-1"),)
                )
    details = err.value.details()
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "returned shape" not in details and "req-bug-1" in details and "this is a bug" in details
    logged = [r.getMessage() for r in caplog.records]
    assert any("req-bug-1" in m and "returned shape" in m for m in logged), logged
