"""L1: reliability properties 1, 2, 6 and 7 (docs/reliability.md) observed on the server side, on a real tritonserver.

The service calls slow stand-ins of its request-path models (``tests/support/slow_triton``: python-backend
models on the real tritonserver that hold a request for the ``hold:<ms>`` its text names and log what
*Triton* saw -- the request's id, the per-request timeout it was given, and whether it was answered or
cancelled). So each property is checked where it happens, not through the caller's own status:

1. a 300 ms caller deadline reaches Triton as the request's timeout (not the 5 s stage budget), and Triton
   cancels the model's work at that deadline; nothing is left running;
2. a caller's cancel reaches Triton: the model sees its request cancelled within a second, with 60 s budgets
   that nothing else could have cut;
7. a burst over a one-slot queue (REJECT): every chat answers (degraded where its classify was shed), and
   Triton's own request counters show exactly one classify attempt per chat -- no retry storm;
R. the rerank decision is per chat (server/stages/rerank.py): one rerank call held past its budget is cut and
   Triton sees it cancelled, and the next chat, which has the time, is reranked by Triton (a 5 s back-off
   skipped it); a chat that cannot fit the measured rerank latency is skipped without a call Triton counts;
6. SIGTERM to a real ``python -m server`` process with chats in flight: they finish with the model's answer,
   a new chat is refused, the process exits 0 within its drain grace, and Triton answered (not cancelled)
   every held request.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import grpc
import pytest
from mangaassist.v1 import mangaassist_pb2 as pb
from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

from server.triton_runtime import TritonServer, free_port
from tests.support.counters import settle_async
from tests.e2e.test_service_e2e import CATALOG_DB, INDEX_DIR, built_outputs, e2e_settings  # noqa: F401 (fixture)
from tests.support.servers import drained_after
from tests.support.slow_triton import SERVICE_MODELS, CountingProxy, make_repository, read_events

pytestmark = pytest.mark.L1
ROOT = Path(__file__).resolve().parents[2]
#: Far above anything these tests wait for: only the caller's deadline or cancel can cut a held call.
LONG_BUDGETS = {k: 60_000.0 for k in ("total_ms", "classify_ms", "embed_ms", "adapter_ms", "retrieve_ms", "rerank_ms")}


@pytest.fixture(scope="module")
def slow_triton(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("slow_triton")
    events = scratch / "events.jsonl"
    with TritonServer(make_repository(scratch / "repo", events)).start() as server:
        server.events = events
        yield server


@pytest.fixture
async def start_service(built_outputs, slow_triton):  # noqa: F811 (fixture)
    """``await start_service(classifier_model=...)``: an in-process service on the slow models."""
    from server.app import build_components, start_server

    async def start(url: str | None = None, budgets: dict | None = None, **triton):
        settings = e2e_settings(
            url or slow_triton.grpc_url, budgets=budgets or LONG_BUDGETS,
            triton={**SERVICE_MODELS, "send_queue_timeout": True, **triton},
        )
        return await start_server(settings, build_components(settings), serve_metrics=False)

    async with drained_after(start) as factory:
        yield factory


def _events(triton, request_id: str) -> dict[str, list[dict]]:
    """Triton's events of one chat, per model."""
    out: dict[str, list[dict]] = {}
    for e in read_events(triton.events):
        if e["id"] == request_id:
            out.setdefault(e["model"], []).append(e)
    return out


async def _wait_events(triton, request_id: str, done, timeout_s: float = 10.0) -> dict[str, list[dict]]:
    deadline = time.monotonic() + timeout_s
    while True:
        seen = _events(triton, request_id)
        if done(seen) or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.02)


def _ended(seen: dict[str, list[dict]], models=("slow_classifier", "slow_embedder")) -> bool:
    return all(any(e["event"] != "start" for e in seen.get(m, ())) for m in models)


def _chat(stub, message: str, request_id: str, timeout: float):
    return stub.Chat(pb.ChatRequest(message=message, session_id=request_id), timeout=timeout,
                     metadata=[("x-request-id", request_id)])


# ------------------------------------------------------------------------------------------ 1. deadline
async def test_caller_deadline_reaches_triton_and_cancels_the_work_there(start_service, slow_triton):
    server = await start_service()
    rid = f"deadline-{uuid.uuid4().hex[:8]}"
    async with grpc.aio.insecure_channel(server.target) as channel:
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _chat(pb_grpc.MangaAssistStub(channel), "recommend a dark fantasy series hold:20000", rid, timeout=0.3)
        elapsed = time.monotonic() - started
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 1.0, elapsed
    seen = await _wait_events(slow_triton, rid, _ended)
    for model in ("slow_classifier", "slow_embedder"):
        (start,), ends = [e for e in seen[model] if e["event"] == "start"], [e for e in seen[model] if e["event"] != "start"]
        # the request Triton got carried the caller's remaining time, not the 60 s stage budget
        assert 0 < start["timeout_us"] <= 300_000, start
        # and Triton cancelled the model's work at about that deadline (it would hold 20 s otherwise)
        assert [e["event"] for e in ends] == ["cancelled"], seen[model]
        assert ends[0]["t"] - started < 1.0, (ends[0]["t"] - started, seen[model])
    assert server.pipeline.admission.in_flight == 0


# ------------------------------------------------------------------------------------------ 2. cancel
async def test_client_cancel_reaches_triton(start_service, slow_triton):
    server = await start_service()
    rid = f"cancel-{uuid.uuid4().hex[:8]}"
    async with grpc.aio.insecure_channel(server.target) as channel:
        call = _chat(pb_grpc.MangaAssistStub(channel), "recommend a dark fantasy series hold:20000", rid, timeout=60)
        arrived = await _wait_events(slow_triton, rid, lambda s: {"slow_classifier", "slow_embedder"} <= set(s))
        assert {"slow_classifier", "slow_embedder"} <= set(arrived), arrived
        await asyncio.sleep(0.3)
        assert not _ended(_events(slow_triton, rid))  # held: only the cancel can end it (60 s budgets)
        call.cancel()
        cancelled_at = time.monotonic()
        seen = await _wait_events(slow_triton, rid, _ended, timeout_s=5)
    for model in ("slow_classifier", "slow_embedder"):
        ends = [e for e in seen[model] if e["event"] != "start"]
        assert [e["event"] for e in ends] == ["cancelled"], seen[model]
        assert ends[0]["t"] - cancelled_at < 1.0, ends[0]["t"] - cancelled_at
    for _ in range(100):
        if server.pipeline.admission.in_flight == 0:
            break
        await asyncio.sleep(0.02)
    assert server.pipeline.admission.in_flight == 0


# ------------------------------------------------------------------------------------------ 7. queue full
def _triton_requests(triton, model: str) -> dict[str, float]:
    """Triton's own counters for ``model``: successes and failures by reason (REJECTED, CANCELED, ...)."""
    body = urllib.request.urlopen(triton.metrics_url, timeout=5).read().decode()
    out: dict[str, float] = {}
    for line in body.splitlines():
        if f'model="{model}"' not in line or line.startswith("#"):
            continue
        if line.startswith("nv_inference_request_success"):
            out["success"] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("nv_inference_request_failure"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0] if 'reason="' in line else "failure"
            out[reason] = out.get(reason, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


async def test_burst_over_a_full_queue_degrades_without_a_retry_storm(start_service, slow_triton):
    proxy = await CountingProxy(slow_triton.grpc_url).start()  # counts what the service sends, rejected calls too
    try:
        server = await start_service(proxy.target, classifier_model="bounded_classifier")
        before = _triton_requests(slow_triton, "bounded_classifier")
        burst = 6
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.MangaAssistStub(channel)
            replies = await asyncio.gather(*(
                _chat(stub, f"recommend a dark fantasy series {i} hold:600", f"burst-{i}-{uuid.uuid4().hex[:6]}", timeout=30)
                for i in range(burst)))
        await asyncio.sleep(1.0)  # anything a retry loop would still send, it sends now
        ran = burst - sum("classifier_unavailable" in r.degraded for r in replies)
        # Triton counts a request at release, possibly after its response: read until the ones it ran are counted
        after = await settle_async(lambda: _triton_requests(slow_triton, "bounded_classifier"),
                                   lambda a: a.get("success", 0) - before.get("success", 0) >= ran)
    finally:
        await proxy.stop()
    # every chat answered OK; the ones whose classify Triton shed (queue of one, REJECT) say so
    shed = [r for r in replies if "classifier_unavailable" in r.degraded]
    assert all(r.answer for r in replies)
    assert shed and len(shed) < burst, [list(r.degraded) for r in replies]  # one runs, one waits, the rest shed
    # exactly one classify per chat left the service -- a shed call was not retried -- and Triton ran only the
    # ones it did not shed
    assert proxy.infers.get("bounded_classifier") == burst, proxy.infers
    assert after.get("success", 0) - before.get("success", 0) == burst - len(shed), (before, after)


# ------------------------------------------------------------------------------------------ R. rerank decision
#: ms: room for the slow models' 100 ms batching windows on a loaded box; a rerank call gets 800 ms
RERANK_BUDGETS = {"total_ms": 4000.0, "classify_ms": 1500.0, "embed_ms": 1500.0, "adapter_ms": 1000.0,
                  "retrieve_ms": 1000.0, "rerank_ms": 800.0, "rerank_probe_after_s": 600.0}


def _rerank_events(triton, request_id: str) -> list[str]:
    return [e["event"] for e in _events(triton, request_id).get("slow_reranker", [])]


def _triton_total(triton, model: str) -> float:
    return sum(_triton_requests(triton, model).values())  # answered + failed (cancelled, rejected, ...)


async def test_one_slow_rerank_call_does_not_skip_the_next_chat(start_service, slow_triton):
    server = await start_service(budgets=RERANK_BUDGETS)
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = pb_grpc.MangaAssistStub(channel)
        first, slow, after = (f"{n}-{uuid.uuid4().hex[:8]}" for n in ("fast", "slow", "next"))
        reply = await _chat(stub, "recommend a dark fantasy series", first, timeout=30)
        assert "rerank_skipped" not in reply.degraded, list(reply.degraded)
        # held 20 s by the reranker: cut at its 800 ms budget, and the cancel reaches Triton
        reply = await _chat(stub, "recommend a dark fantasy series slowrank:20000", slow, timeout=30)
        assert "rerank_skipped" in reply.degraded, list(reply.degraded)
        reply = await _chat(stub, "recommend a dark fantasy series", after, timeout=30)
        # the next chat has its 800 ms: it is reranked, by Triton
        assert "rerank_skipped" not in reply.degraded, list(reply.degraded)
        seen = await _wait_events(slow_triton, after, lambda s: "done" in [e["event"] for e in s.get("slow_reranker", [])])
    assert [e["event"] for e in seen["slow_reranker"]] == ["start", "done"], seen
    assert _rerank_events(slow_triton, first) == ["start", "done"]
    # the cut call did not hold the reranker's one instance for 20 s: Triton cancelled it
    assert _rerank_events(slow_triton, slow) == ["start", "cancelled"]
    assert server.pipeline.rerank_estimate.decisions["cut"] == 1
    assert server.pipeline.rerank_estimate.decisions["reranked"] == 2


async def test_chat_without_time_for_the_measured_reranker_is_skipped_without_calling_triton(start_service, slow_triton):
    server = await start_service(budgets=RERANK_BUDGETS)
    # what the start-up warm-up records for a reranker that takes 5 s (server/app.py): more than a chat's 800 ms
    server.pipeline.rerank_estimate.observe(5000.0)
    before = _triton_total(slow_triton, "slow_reranker")
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = pb_grpc.MangaAssistStub(channel)
        skipped, control = f"short-{uuid.uuid4().hex[:8]}", f"control-{uuid.uuid4().hex[:8]}"
        reply = await _chat(stub, "recommend a dark fantasy series", skipped, timeout=30)
        assert "rerank_skipped" in reply.degraded, list(reply.degraded)
        # control: a Retrieve whose caller gives it 30 s has the time; Triton counts its call
        retrieved = await stub.Retrieve(pb.RetrieveRequest(query="dark fantasy series", top_k=3, rerank=True),
                                        timeout=30, metadata=[("x-request-id", control)])
        assert retrieved.reranked
    after = await settle_async(lambda: _triton_total(slow_triton, "slow_reranker"), lambda a: a - before >= 1)
    assert after - before == 1, (before, after)  # the control's call only
    assert _rerank_events(slow_triton, skipped) == [] and _rerank_events(slow_triton, control) == ["start", "done"]
    assert server.pipeline.rerank_estimate.decisions["skipped_expected"] == 1
    sample = server.pipeline.metrics.registry.get_sample_value
    assert sample("mangaassist_rerank_decisions_total", {"decision": "skipped_expected"}) == 1  # the reason, exported
    assert sample("mangaassist_rerank_decisions_total", {"decision": "reranked"}) == 1  # the control


# ------------------------------------------------------------------------------------------ 6. SIGTERM
def _health(target: str, service: str) -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        except grpc.RpcError:
            return "UNREACHABLE"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def test_sigterm_with_chats_in_flight_finishes_them_refuses_new_and_exits_within_grace(built_outputs, slow_triton, tmp_path):  # noqa: F811
    from concurrent.futures import ThreadPoolExecutor

    port, grace_s = free_port(), 5.0
    env = {k: v for k, v in os.environ.items() if not k.startswith("MANGAASSIST_")}
    env.update({
        "PYTHONPATH": f"{ROOT / 'proto'}{os.pathsep}{ROOT}", "HF_HUB_OFFLINE": "1",
        "MANGAASSIST_RETRIEVAL_INDEX_DIR": str(INDEX_DIR), "MANGAASSIST_RETRIEVAL_CATALOG_DB": str(CATALOG_DB),
        "MANGAASSIST_SERVER_HOST": "127.0.0.1", "MANGAASSIST_SERVER_METRICS_PORT": "-1",
        "MANGAASSIST_SERVER_DRAIN_GRACE_S": str(grace_s), "MANGAASSIST_SERVER_HEALTH_POLL_S": "0.2",
        "MANGAASSIST_LLM_LOCAL_TIER": "off", "MANGAASSIST_LLM_LOCAL_WARMUP": "false",
        "MANGAASSIST_GUARDRAILS_HALLUCINATION_SCORING": "lexical",
        **{f"MANGAASSIST_TRITON_{k.upper()}": v for k, v in SERVICE_MODELS.items()},
        **{f"MANGAASSIST_BUDGETS_{k.upper()}": "60000" for k in LONG_BUDGETS},
    })
    log = tmp_path / "service.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server", "--triton-url", slow_triton.grpc_url, "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    target = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while _health(target, "readiness") != "SERVING":
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        ids = [f"drain-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
        with grpc.insecure_channel(target) as channel, ThreadPoolExecutor(len(ids)) as pool:
            stub = pb_grpc.MangaAssistStub(channel)
            futures = [pool.submit(lambda rid: stub.Chat(pb.ChatRequest(message="recommend a dark fantasy series hold:2000", session_id=rid),
                                                         timeout=30, metadata=[("x-request-id", rid)]), rid) for rid in ids]
            arrive_by = time.monotonic() + 10
            while not all("slow_classifier" in _events(slow_triton, rid) for rid in ids):  # all three held by Triton
                assert time.monotonic() < arrive_by, read_events(slow_triton.events)[-6:]
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            sigterm_at = time.monotonic()
            time.sleep(0.3)
            with pytest.raises(grpc.RpcError) as refused:  # new work is refused while the three finish
                stub.Chat(pb.ChatRequest(message="hello there", session_id="late"), timeout=5)
            replies = [f.result(timeout=30) for f in futures]
        code = proc.wait(timeout=grace_s + 5)
        exited_after = time.monotonic() - sigterm_at
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value
    assert all(r.answer and r.intent and "classifier_unavailable" not in r.degraded for r in replies), replies
    for rid in ids:  # Triton answered each held request: the drain waited for it, nothing was cancelled
        assert [e["event"] for e in _events(slow_triton, rid)["slow_classifier"]] == ["start", "done"]
    assert code == 0, log.read_text()[-3000:]
    assert exited_after < grace_s + 1.0, exited_after
    assert "drained" in log.read_text()
