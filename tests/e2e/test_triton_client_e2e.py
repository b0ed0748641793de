"""L1: the one Triton client against real tritonservers (server/backends/client.py).

- the served models are what the model contract (contracts/models.py) says, read from Triton's
  own metadata and config endpoints;
- one chat -> every Triton request it causes (ensemble steps, the LLM stream, the scorer) carries the chat's
  request id, read back from Triton's trace file;
- two tritonservers behind one multi-address target (``ipv4:A,B``, what a headless Service's DNS answer
  amounts to): calls reach both, and when one is killed the rest go to the other.

Reuses the session tritonserver (tracing switched on at run time); the failover test starts one more
server with the request-path models only.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from tritonclient.grpc import aio as triton_aio

from clients.sdk import AsyncMangaAssistClient
from contracts import models as contract
from server.backends.client import TritonClient
from server.backends.triton import TritonBackend
from server.hallucination.worker import ScoringJob
from server.settings import TritonSettings
from server.triton_runtime import TritonServer
from tests.support.counters import settle_async
from tests.e2e.test_service_e2e import (  # noqa: F401 (fixtures)
    built_outputs, catalog_rows, product, request_path_repository, start_service,
)

pytestmark = pytest.mark.L1


# ------------------------------------------------------------------------------------------ contract
async def test_served_models_match_the_contract(triton):
    async with triton_aio.InferenceServerClient(triton.grpc_url) as client:
        for model in contract.SERVICE_MODELS.values():
            meta = await client.get_model_metadata(model.name, contract.DEFAULT_MODEL_VERSION, as_json=True)
            config = (await client.get_model_config(model.name, as_json=True))["config"]
            batch = [-1] if model.max_batch_size else []
            for side, declared in (("inputs", model.inputs), ("outputs", model.outputs)):
                served = [(t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in meta[side]]
                want = [(t.name, t.wire_dtype, batch + list(t.dims)) for t in declared]
                assert served == want, (model.name, side)
            assert int(config.get("max_batch_size", 0)) == model.max_batch_size, model.name
            decoupled = config.get("model_transaction_policy", {}).get("decoupled", False)
            assert decoupled == model.decoupled, model.name


# ------------------------------------------------------------------------------------------ request ids
QUESTION = ("product_question", "price_deal")  # the intents a price question may get; routed to the local LLM

def _trace_records(paths: list[Path]) -> list[dict]:
    records = []
    for path in paths:
        text = path.read_text().strip()
        if text:
            records += json.loads(text)
    return records


async def test_one_chat_tags_every_triton_request_with_its_request_id(start_service, triton, product):
    """Classifier, embedder, adapter, reranker (each an ensemble: tokenizer + ONNX steps), the local LLM's
    stream and the hallucination scorer all carry the chat's request id in Triton's trace."""
    server = await start_service(
        triton.grpc_url,
        llm={"local_tier": "on", "local_warmup": False},
        routing={"tiers": {i: "small" for i in QUESTION}, "temperatures": {i: 0.0 for i in QUESTION},
                 "max_tokens": {i: 48 for i in QUESTION}},
        guardrails={"hallucination_scoring": "triton"},
        budgets={"answer_ms": 120_000.0},  # a cold 135M prefill on a shared 2-core box
    )
    request_id = f"chat-{uuid.uuid4().hex[:12]}"
    async with triton_aio.InferenceServerClient(triton.grpc_url) as admin:
        before = {p.name for p in triton.trace_dir.glob("trace.json*")}
        await admin.update_trace_settings(settings={"trace_level": ["TIMESTAMPS"], "trace_rate": "1", "log_frequency": "1"})
        try:
            async with AsyncMangaAssistClient(server.target, timeout=120.0) as c:
                reply = await c.chat(f"how much is {product['title']} and is it in stock?", request_id=request_id)
            # A 135M model's answer may state nothing checkable (then nothing is scored): score, under the same
            # request id, what the chat's scoring job would get for an answer that states a price.
            stated = ScoringJob(session_id="s", request_id=request_id, tier="small", products=(product["asin"],),
                                answer=f"{product['title']} costs ${product['price'] + 1:.2f}.")
            assert server.scoring.submit(stated)
            await server.scoring.stop(drain=True, timeout_s=60.0)  # the scorer runs after the response
        finally:
            await admin.update_trace_settings(settings={"trace_level": ["OFF"], "log_frequency": "0"})
    print(f"\n[trace] answer ({reply.tier}, {list(reply.degraded)}): {reply.answer!r}")
    assert reply.request_id == request_id
    await asyncio.sleep(0.5)  # the last trace files land
    new_files = [p for p in sorted(triton.trace_dir.glob("trace.json*")) if p.name not in before]
    window = [r for r in _trace_records(new_files) if "model_name" in r]
    assert window, "tracing wrote nothing"
    touched = {r["model_name"] for r in window}
    # every model the chat touched carries its id -- the ensembles' composing steps included
    ids = {(r["model_name"], r.get("request_id", "")) for r in window}  # Triton leaves out an empty id
    assert {i for _, i in ids} == {request_id}, sorted(ids)
    wanted = {contract.INTENT_CLASSIFIER.name, contract.QUERY_EMBEDDER.name, contract.EMBEDDING_ADAPTER.name,
              contract.RERANKER.name, contract.LLM_SMALL.name, contract.HALLUCINATION_SCORER.name,
              "intent_tokenizer", "intent_classifier_onnx", "hallucination_scorer_onnx"}
    assert wanted <= touched, sorted(touched)
    print(f"\n[trace] {len(window)} model requests of chat {request_id}: {sorted(touched)}")


# ------------------------------------------------------------------------------------------ load balancing
def _successes(triton: TritonServer, model: str) -> int:
    with urllib.request.urlopen(triton.metrics_url, timeout=5) as resp:
        text = resp.read().decode()
    found = re.search(rf'^nv_inference_request_success{{model="{model}",version="1"}} (\d+)', text, re.M)
    return int(found.group(1)) if found else 0


async def test_round_robin_over_two_tritonservers_then_failover_to_the_survivor(triton, built_repo, tmp_path):
    other = await asyncio.to_thread(TritonServer(request_path_repository(built_repo, tmp_path / "repo")).start)
    model = contract.INTENT_CLASSIFIER.name
    target = f"ipv4:{triton.grpc_url},{other.grpc_url}"
    backend = TritonBackend(TritonSettings(url=target, breaker_failures=1_000))
    try:
        base = (_successes(triton, model), _successes(other, model))
        for i in range(20):
            probs = await backend.classify([f"where is my parcel {i}"], timeout_s=30.0)
            assert probs.shape == (1, len(contract.INTENT_LABELS))
        # Triton's counters are updated at release, possibly after the response: read until all 20 are counted
        first, second = await settle_async(
            lambda: (_successes(triton, model) - base[0], _successes(other, model) - base[1]), lambda c: sum(c) >= 20)
        assert first + second == 20 and first >= 5 and second >= 5, (first, second)

        await asyncio.to_thread(other.kill)  # SIGKILL: no goodbye, the connection just resets
        failures = 0
        for i in range(20):
            try:
                await backend.classify([f"where is my parcel {i}"], timeout_s=30.0)
            except Exception:  # noqa: BLE001 -- a call racing the reset may fail once; the rest must not
                failures += 1
        assert failures <= 1, failures
        survivor = await settle_async(lambda: _successes(triton, model) - base[0] - first, lambda n: n >= 20 - failures)
        assert survivor == 20 - failures, (survivor, failures)
    finally:
        await backend.close()
        await asyncio.to_thread(other.stop)
