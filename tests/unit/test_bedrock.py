"""BedrockTier against a loopback server speaking the Bedrock wire format (real boto3 client, real retries)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.eventstream import EventStreamBuffer

from server.errors import TierUnavailable
from server.llm import answer_format
from server.llm.base import LLMRequest
from server.llm.bedrock import BedrockTier, StreamUsage, _timeout_bucket
from server.retrieval.base import Chunk, ScoredChunk

pytestmark = pytest.mark.L0


def _load_support():
    name = "mangaassist_tests_support_bedrock_loopback"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "support" / "bedrock_loopback.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


loopback_mod = _load_support()
MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"
PRICES = {"input": 0.25, "output": 1.25}

ANSWER = answer_format.render(
    "Chainsaw Man Vol. 1 (B0CSM00001) is in stock for $9.99.\nIt ships tomorrow.", ["B0CSM00001"]
)


@pytest.fixture
def server():
    with loopback_mod.BedrockLoopback() as srv:
        yield srv


@pytest.fixture
def tier(server):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    return BedrockTier("large", MODEL_ID, "us-east-1", PRICES, endpoint_url=server.endpoint_url, session=session)


def _request(message: str = "Is Chainsaw Man vol 1 in stock?", timeout_s: float = 5.0, intent="product_question"):
    ctx = [ScoredChunk(Chunk("c1", "d1", "product", "Chainsaw Man, Vol. 1. Tankobon. Price $9.99.", "B0CSM00001"), 0.9)]
    return LLMRequest(intent=intent, user_message=message, context=ctx, temperature=0.1, max_tokens=256,
                      timeout_s=timeout_s)


def test_event_stream_encoder_is_what_botocore_decodes():
    buf = EventStreamBuffer()
    frame = loopback_mod.encode_event("contentBlockDelta", {"delta": {"text": "héllo"}, "contentBlockIndex": 0})
    buf.add_data(frame + loopback_mod.encode_exception("throttlingException", "slow down"))
    msgs = list(buf)
    assert msgs[0].headers[":event-type"] == "contentBlockDelta"
    assert msgs[0].headers[":message-type"] == "event"
    assert json.loads(msgs[0].payload) == {"delta": {"text": "héllo"}, "contentBlockIndex": 0}
    assert msgs[1].headers[":exception-type"] == "throttlingException"


async def test_converse_answer_parsed_with_tokens_and_cost(server, tier):
    server.respond(ANSWER, input_tokens=1000, output_tokens=200)
    answer = await tier.generate(_request())
    assert answer.text == "Chainsaw Man Vol. 1 (B0CSM00001) is in stock for $9.99.\nIt ships tomorrow."
    assert answer.product_asins == ("B0CSM00001",)
    assert (answer.tier, answer.model) == ("large", MODEL_ID)
    assert (answer.input_tokens, answer.output_tokens) == (1000, 200)
    assert answer.cost_usd == pytest.approx(1000 / 1000 * 0.25 + 200 / 1000 * 1.25)
    assert answer.degraded == ()
    req = server.requests[0]
    assert req.operation == "converse" and req.model_id == MODEL_ID
    assert req.body["inferenceConfig"] == {"maxTokens": 256, "temperature": 0.1}


async def test_converse_stream_deltas_reassembled(server, tier):
    deltas = tuple(ANSWER[i : i + 7] for i in range(0, len(ANSWER), 7))
    server.respond(ANSWER, input_tokens=900, output_tokens=50, deltas=deltas)
    usage = StreamUsage()
    got = [d async for d in tier.stream(_request(), usage)]
    assert got == list(deltas)
    parser = answer_format.StreamParser()
    events = [e for d in got for e in parser.feed(d)]
    parsed = parser.close()
    assert parsed.complete and parsed.asins == ("B0CSM00001",)
    assert isinstance(events[0], answer_format.TextEvent)
    assert (usage.input_tokens, usage.output_tokens, usage.stop_reason) == (900, 50, "end_turn")
    assert usage.cost_usd == pytest.approx(0.9 * 0.25 + 0.05 * 1.25)
    assert server.requests[0].operation == "converse-stream"


async def test_generate_streaming_builds_the_same_answer(server, tier):
    server.respond(ANSWER, input_tokens=10, output_tokens=20)
    answer = await tier.generate_streaming(_request())
    assert answer.product_asins == ("B0CSM00001",) and answer.output_tokens == 20


async def test_throttled_once_then_ok_is_one_retry(server, tier):
    server.error(429, "ThrottlingException", "Too many requests").respond(ANSWER)
    answer = await tier.generate(_request(timeout_s=5.0))
    assert answer.product_asins == ("B0CSM00001",)
    assert server.count() == 2


async def test_throttled_twice_gives_up_after_two_attempts(server, tier):
    server.error(429, "ThrottlingException").error(429, "ThrottlingException").respond(ANSWER)
    with pytest.raises(TierUnavailable) as info:
        await tier.generate(_request(timeout_s=5.0))
    assert info.value.retryable is True and info.value.tier == "large"
    assert server.count() == 2


async def test_model_timeout_408_is_not_retried(server, tier):
    server.error(408, "ModelTimeoutException", "Model has timed out").respond(ANSWER)
    with pytest.raises(TierUnavailable) as info:
        await tier.generate(_request(timeout_s=5.0))
    assert info.value.retryable is False
    assert server.count() == 1  # one call: not retried (no backoff to time)


async def test_service_unavailable_is_retried_then_reported_retryable(server, tier):
    server.error(503, "ServiceUnavailableException").error(503, "ServiceUnavailableException")
    with pytest.raises(TierUnavailable) as info:
        await tier.generate(_request(timeout_s=5.0))
    assert info.value.retryable is True
    assert server.count() == 2


async def test_validation_error_is_logged_as_a_bug(server, tier, caplog):
    server.error(400, "ValidationException", "messages: bad role order")
    with caplog.at_level(logging.ERROR, logger="server.llm.bedrock"):
        with pytest.raises(TierUnavailable) as info:
            await tier.generate(_request())
    assert info.value.retryable is False
    assert server.count() == 1
    assert any("this is a bug" in r.getMessage() for r in caplog.records)


async def test_hang_longer_than_budget_is_cut_near_the_budget(server, tier):
    server.hang(8.0)
    start = time.perf_counter()
    with pytest.raises(TierUnavailable) as info:
        await tier.generate(_request(timeout_s=0.6))
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, elapsed  # the hang lasts 8 s; generous bound for a shared 2-core box
    assert info.value.retryable is False
    # Without the veto botocore would retry the read timeout after <= 1 s of backoff: wait long enough to see it.
    await asyncio.sleep(1.0)
    assert server.count() == 1  # a read timeout already spent the budget: botocore's retry is vetoed


async def test_stream_that_stalls_is_cut_near_the_budget(server, tier):
    server.stall(after_deltas=2, seconds=8.0, text=ANSWER)
    got = []
    start = time.perf_counter()
    with pytest.raises(TierUnavailable):
        async for d in tier.stream(_request(timeout_s=0.8)):
            got.append(d)
    assert time.perf_counter() - start < 2.5
    assert len(got) == 2


async def test_a_caller_cancelling_a_stream_closes_the_bedrock_connection(server, tier):
    """Observed on the Bedrock side: once the caller stops reading, the loopback's next write finds the
    connection closed (it would otherwise finish the answer into a socket nobody reads)."""
    server.stall(after_deltas=1, seconds=0.5, text='{"type": "text", "text": "a long answer in many pieces"}\n' * 4)
    stream = tier.stream(_request(timeout_s=10.0))
    assert await stream.__anext__()
    await stream.aclose()  # what the router does when the gRPC caller cancels
    deadline = time.monotonic() + 5
    while server.disconnects == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert server.disconnects == 1 and server.count("converse-stream") == 1  # closed, and not retried


async def test_unparsable_model_output_is_flagged_for_the_schema_guardrail(server, tier):
    server.respond("Sure! Chainsaw Man is $9.99.")
    answer = await tier.generate(_request())
    assert "answer_format_invalid" in answer.degraded and answer.product_asins == ()


async def test_prompt_prefix_is_stable_across_messages(server, tier):
    server.respond(ANSWER).respond(ANSWER)
    await tier.generate(_request("Is Chainsaw Man vol 1 in stock?"))
    await tier.generate(_request("My email is a@b.co, recommend something dark", intent="recommendation"))
    first, second = server.requests
    assert first.system_text == second.system_text and first.system_text
    assert first.body["messages"][:-1] == second.body["messages"][:-1]  # few-shot block
    assert first.last_user_text != second.last_user_text
    # retrieved context (source-tagged with ASIN) first, the user's message last
    last = second.last_user_text
    assert last.index("[product B0CSM00001]") < last.index("<customer_message>")
    assert last.rstrip().endswith("recommend something dark</customer_message>")


def test_clients_are_cached_per_timeout_bucket(tier):
    assert _timeout_bucket(1.37) == 1.25 and _timeout_bucket(0.12) == pytest.approx(0.1)
    a, b, c = tier._client_for(1.30), tier._client_for(1.45), tier._client_for(2.0)
    assert a is b and a is not c
    assert a.meta.config.read_timeout == 1.25
    assert a.meta.config.retries["total_max_attempts"] == 2


async def test_no_budget_left_fails_without_calling(server, tier):
    with pytest.raises(TierUnavailable):
        await tier.generate(_request(timeout_s=0.0))
    assert server.count() == 0


async def test_endpoint_down_is_retryable_unavailable():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    tier = BedrockTier("small", MODEL_ID, "us-east-1", PRICES, endpoint_url=f"http://127.0.0.1:{port}", session=session)
    with pytest.raises(TierUnavailable) as info:
        await tier.generate(_request(timeout_s=3.0))
    assert info.value.retryable is True and info.value.tier == "small"


async def test_consumer_leaving_a_stream_early_stops_it(server, tier):
    server.respond(ANSWER, deltas=tuple(ANSWER[i : i + 5] for i in range(0, len(ANSWER), 5)))
    agen = tier.stream(_request())
    first = await agen.__anext__()
    await agen.aclose()
    assert first == ANSWER[:5]
    # the tier keeps working for the next request
    server.respond(ANSWER)
    assert (await tier.generate(_request())).product_asins == ("B0CSM00001",)
