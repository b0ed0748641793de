"""L1: the batch RPCs against the real models, with the shipped budgets (issue 11 #4).

``mangaassist classify --file`` on 96 hand-written messages at the CLI's defaults (batch 64, 10 s deadline)
used to fail with "intent_classifier did not answer within the request's budget": the 64-text batch was held
to a chat's 50 ms classify budget. It must now answer every line, and a 64-text Classify without any deadline
must fit the stage budget widened for its rows.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import grpc
import pytest
from mangaassist.v1 import mangaassist_pb2 as pb
from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

from server.intents import INTENT_LABELS
from server.settings import BudgetSettings
from tests.e2e.test_service_e2e import built_outputs, start_service  # noqa: F401 -- fixtures
from tests.support.cli_runs import classify_file

pytestmark = pytest.mark.L1

HANDWRITTEN = Path(__file__).resolve().parents[1] / "fixtures" / "intents_handwritten.jsonl"
SHIPPED_BUDGETS = dataclasses.asdict(BudgetSettings())


def _messages(n: int) -> list[str]:
    with HANDWRITTEN.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f][:n]


async def test_cli_classify_file_succeeds_at_its_defaults_with_the_shipped_budgets(start_service, triton, tmp_path):
    service = await start_service(triton.grpc_url, budgets=SHIPPED_BUDGETS)
    rc, lines = await classify_file(service.target, _messages(96), tmp_path)
    assert rc == 0
    assert len(lines) == 96 and {line["intent"] for line in lines} <= set(INTENT_LABELS)


async def test_a_64_text_classify_without_a_deadline_fits_its_widened_budget(start_service, triton):
    service = await start_service(triton.grpc_url, budgets=SHIPPED_BUDGETS)
    async with grpc.aio.insecure_channel(service.target) as channel:
        reply = await pb_grpc.MangaAssistStub(channel).Classify(pb.ClassifyRequest(texts=_messages(64)))
    assert len(reply.results) == 64
