"""The local LLM tier end to end: SmolLM2 exported to ONNX (cached), served by a real tritonserver as the
decoupled ``llm_small`` python model, called through LocalTier and the raw gRPC stream.

The export (~4 minutes on 2 cores) lands in ``.build/models/smollm2`` (or $MANGAASSIST_SMOLLM_DIR) and is
reused while its manifest key is unchanged. Measured tokens/s and time to first token are printed (run
with ``-s``) and written to ``<export dir>/generation_measurements.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from model_repository.training import smollm
from server.llm import answer_format
from server.llm.base import LLMRequest
from server.llm.local import LocalStreamInfo, LocalTier
from server.retrieval.base import Chunk, ScoredChunk
from server.triton_runtime import TritonServer

pytestmark = pytest.mark.L1

ROOT = Path(__file__).resolve().parents[2]
EXPORT_DIR = Path(os.environ.get("MANGAASSIST_SMOLLM_DIR", ROOT / ".build" / "models" / "smollm2"))
MEASUREMENTS: dict = {}


@pytest.fixture(scope="module")
def export_report() -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    report = smollm.build_smollm2(EXPORT_DIR)
    assert report["agreement"]["all_identical"], report["agreement"]
    return report


@pytest.fixture(scope="module")
def triton(export_report, tmp_path_factory):
    # Same filesystem as the build dir when possible, so the 515 MB graph is hardlinked, not copied.
    repo = tmp_path_factory.mktemp("llm_repo")
    smollm.assemble_llm(repo, EXPORT_DIR, "cpu")
    server = TritonServer(repo, startup_timeout_s=300)
    with server:
        yield server
    if MEASUREMENTS:
        (EXPORT_DIR / "generation_measurements.json").write_text(json.dumps(MEASUREMENTS, indent=2))
        print(f"\n[smollm2] measurements: {json.dumps(MEASUREMENTS)}")


def catalog_request(**kw) -> LLMRequest:
    ctx = [
        ScoredChunk(Chunk("p1", "d1", "product",
                          "Chainsaw Man, Vol. 1 by Tatsuki Fujimoto. Format: tankobon. Language: English. "
                          "Age rating: teen. In stock: 42 copies. Released 2020-10-06. Denji is a young devil "
                          "hunter who merges with his chainsaw devil dog Pochita.", "B0CHAINSW1"), 0.92),
        ScoredChunk(Chunk("r1", "d2", "review", "Readers love the fast pace and dark humour.", "B0CHAINSW1"), 0.71),
    ]
    base = dict(intent="product_question", user_message="Is Chainsaw Man volume 1 in stock, and in what format?",
                context=ctx, temperature=0.0, max_tokens=48, timeout_s=180.0, session_id="e2e")
    base.update(kw)
    return LLMRequest(**base)


def _infer_item(prompt: str, max_tokens: int, temperature: float = 0.0) -> dict:
    from tritonclient.grpc import InferInput

    p = InferInput("PROMPT", [1], "BYTES")
    p.set_data_from_numpy(np.array([prompt.encode("utf-8")], dtype=np.object_))
    m = InferInput("MAX_TOKENS", [1], "INT32")
    m.set_data_from_numpy(np.array([max_tokens], dtype=np.int32))
    t = InferInput("TEMPERATURE", [1], "FP32")
    t.set_data_from_numpy(np.array([temperature], dtype=np.float32))
    return {"model_name": "llm_small", "inputs": [p, m, t]}


async def raw_call(url: str, prompt: str, max_tokens: int, *, stop_after: int | None = None, temperature=0.0):
    """(responses [(delta, usage, reason, t)], error message | None) over one gRPC stream."""
    from tritonclient.grpc.aio import InferenceServerClient

    client = InferenceServerClient(url)
    done = asyncio.Event()

    async def requests():
        yield _infer_item(prompt, max_tokens, temperature)
        await done.wait()

    out, error = [], None
    start = time.perf_counter()
    stream = client.stream_infer(requests())
    try:
        async for result, err in stream:
            if err is not None:
                error = err.message()
                break
            delta = result.as_numpy("TEXT_DELTA")[0].decode()
            reason = result.as_numpy("FINISH_REASON")[0].decode()
            out.append((delta, result.as_numpy("USAGE").tolist(), reason, time.perf_counter() - start))
            if reason or (stop_after is not None and len(out) >= stop_after):
                break
    finally:
        if not (out and out[-1][2]):
            stream.cancel()
        done.set()
        await client.close()
    return out, error


def _chat(question: str) -> str:
    return json.dumps({"messages": [{"role": "user", "content": question}]})


async def test_answers_catalog_question(triton):
    tier = LocalTier(triton_url=triton.grpc_url)
    try:
        started = time.perf_counter()
        answer = await tier.generate(catalog_request())
        elapsed = time.perf_counter() - started
    finally:
        await tier.close()
    print(f"\n[local llm] answer in {elapsed:.1f}s: {answer}")
    assert answer.text.strip(), answer
    assert answer.tier == "small" and answer.model == "smollm2-135m-instruct" and answer.cost_usd == 0.0
    assert answer.input_tokens > 600  # system + few-shot + context
    assert 0 < answer.output_tokens <= 48
    assert not answer_format.fatal_schema_errors(answer_format.parse(answer_format.render(answer.text, answer.product_asins)))
    MEASUREMENTS["tier_answer"] = {"seconds": round(elapsed, 2), "input_tokens": answer.input_tokens,
                                   "output_tokens": answer.output_tokens, "degraded": list(answer.degraded),
                                   "text": answer.text}


async def test_streams_many_deltas_and_measures(triton):
    # The tier's prompt shares its ~665-token prefix with the previous test (KV prefix cache warm).
    tier = LocalTier(triton_url=triton.grpc_url)
    info = LocalStreamInfo()
    times, deltas = [], []
    started = time.perf_counter()
    try:
        async with contextlib.aclosing(tier.raw_stream(catalog_request(max_tokens=64, user_message="Tell me about Chainsaw Man volume 1."), info)) as stream:
            async for delta in stream:
                deltas.append(delta)
                times.append(time.perf_counter() - started)
    finally:
        await tier.close()
    assert len(deltas) > 1 and "".join(deltas) == info.raw_text
    n = info.output_tokens
    decode_tps = (n - 1) / (times[-1] - times[0]) if n > 1 and times[-1] > times[0] else 0.0
    MEASUREMENTS["triton_tier_prompt_warm_prefix"] = {
        "prompt_tokens": info.input_tokens, "new_tokens": n, "deltas": len(deltas),
        "ttft_ms": round(times[0] * 1000, 1), "decode_tokens_per_s": round(decode_tps, 1),
        "end_to_end_tokens_per_s": round(n / times[-1], 1), "finish_reason": info.finish_reason,
    }
    # A short cold prompt (no shared prefix with the tier's) for a plain chat TTFT.
    out, err = await raw_call(triton.grpc_url, _chat("Recommend a fantasy manga for a teenager."), 64)
    assert err is None and out[-1][2] in ("stop", "length")
    n = out[-1][1][1]
    MEASUREMENTS["triton_short_prompt_cold"] = {
        "prompt_tokens": out[-1][1][0], "new_tokens": n, "deltas": len(out), "ttft_ms": round(out[0][3] * 1000, 1),
        "decode_tokens_per_s": round((n - 1) / max(out[-1][3] - out[0][3], 1e-9), 1),
    }
    print(f"\n[local llm] triton streaming: {MEASUREMENTS}")


async def test_warm_up_makes_first_prompt_fast(triton):
    tier = LocalTier(triton_url=triton.grpc_url)
    try:
        # Evict the shared prefix from the model's KV cache with an unrelated prompt, then warm it up.
        out, _ = await raw_call(triton.grpc_url, _chat("Hi!"), 1)
        started = time.perf_counter()
        await tier.warm_up()
        warm_up_s = time.perf_counter() - started
        info = LocalStreamInfo()
        started = time.perf_counter()
        async with contextlib.aclosing(tier.raw_stream(catalog_request(max_tokens=1), info)) as stream:
            async for _ in stream:
                break
        ttft = time.perf_counter() - started
    finally:
        await tier.close()
    MEASUREMENTS["tier_prompt_ttft"] = {"cold_ms": round(warm_up_s * 1000, 1), "after_warm_up_ms": round(ttft * 1000, 1),
                                        "prompt_tokens": info.input_tokens}
    print(f"\n[local llm] tier prompt TTFT: {MEASUREMENTS['tier_prompt_ttft']}")
    assert ttft < warm_up_s


async def test_max_tokens_respected(triton):
    out, err = await raw_call(triton.grpc_url, _chat("Write a long story about a ninja cat."), 5)
    assert err is None
    prompt_tokens, generated = out[-1][1]
    assert generated <= 5 and prompt_tokens > 0
    assert out[-1][2] == "length"
    assert all(u[1] <= 5 for _, u, _, _ in out)


async def test_overlong_prompt_rejected_and_server_keeps_serving(triton):
    out, err = await raw_call(triton.grpc_url, _chat("manga " * 1500), 8)
    assert out == [] and err is not None
    assert "max_input_tokens=1024" in err and "tokens" in err
    tier = LocalTier(triton_url=triton.grpc_url)
    try:
        answer = await tier.generate(catalog_request(max_tokens=8))
    finally:
        await tier.close()
    assert answer.output_tokens > 0


async def test_cancellation_stops_generation(triton):
    long_prompt = _chat("Write a very long, detailed essay about the history of manga in Japan.")
    # Reference: how fast this server generates right now (the same prompt, 12 tokens).
    ref, _ = await raw_call(triton.grpc_url, long_prompt, 12)
    per_token = max((ref[-1][3] - ref[0][3]) / max(ref[-1][1][1] - 1, 1), 0.005)
    out, err = await raw_call(triton.grpc_url, long_prompt, 400, stop_after=2)  # then cancel the stream
    assert err is None and len(out) == 2 and out[-1][2] == "" and out[-1][1][1] < 400
    # A single-instance model runs requests one at a time: had the cancelled one kept generating, this
    # request would wait for the rest of its 400 tokens first.
    started = time.perf_counter()
    follow, err = await raw_call(triton.grpc_url, _chat("Say hi."), 3)
    waited = time.perf_counter() - started
    remaining_if_not_cancelled = (400 - out[-1][1][1]) * per_token
    assert err is None and follow[-1][2] in ("stop", "length")
    assert waited < remaining_if_not_cancelled * 0.5, (waited, remaining_if_not_cancelled)
    deadline = time.monotonic() + 10
    while "llm request cancelled" not in triton.log_tail(200) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert "llm request cancelled" in triton.log_tail(200)


def test_measure_in_process(export_report):
    report = smollm.measure_generation(EXPORT_DIR / "onnx")
    assert report["mean_decode_tokens_per_s"] > 0
    MEASUREMENTS["in_process_ort"] = report
    MEASUREMENTS["export"] = {k: export_report[k] for k in ("load_and_save_seconds", "onnx_export_seconds", "total_seconds", "onnx_mb")}
    print(f"\n[local llm] in-process: {report}")
