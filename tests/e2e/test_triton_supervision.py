"""The embedded tritonserver is supervised, and no child outlives the service or its Triton (issue 13).

One real ``python -m server --launch-triton`` process for the module (its Triton serves the request-path
models only, to start fast; the same kind of python-backend stubs). Observed from outside, by pid, ppid and
process group in /proc, and through the service's own health and Chat RPCs and the new Triton's statistics:

1. SIGKILL tritonserver -> readiness NOT_SERVING (liveness stays SERVING), none of its stubs left alive,
   a new tritonserver under the service, readiness SERVING again, and a chat answered by the models
   (Triton's inference statistics of the *new* process count it);
2. a chaos smoke run (``benchmarks.chaos.run`` for a few seconds at a low rate): errors stay at zero, the
   service recovers, no stub is left;
3. SIGKILL the service itself -> its tritonserver and every stub are gone (PR_SET_PDEATHSIG; the stubs
   follow their dead parent). Runs last: it ends the module's process.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from benchmarks.chaos.process import ServeProcess, request_path_build, wait_group_empty
from model_repository.build import DEFAULT_BUILD_DIR
from server.triton_runtime import group_members
from tests.support.counters import settle
from tests.support.requirements import require

pytestmark = pytest.mark.L1

BUILD_DIR = Path(os.environ.get("MANGAASSIST_BUILD_DIR", DEFAULT_BUILD_DIR))  # as conftest.built_repo


@pytest.fixture(scope="module")
def serve(built_repo, tmp_path_factory):
    if not (BUILD_DIR / "index" / "catalog.sqlite").is_file():
        message = f"the supervision tests need the build's index and catalog under {BUILD_DIR / 'index'}"
        require("build", False, message)
    scratch = tmp_path_factory.mktemp("supervised")
    env = {
        "MANGAASSIST_BUILD_DIR": str(request_path_build(BUILD_DIR, scratch / "build")),
        "MANGAASSIST_SERVER_HEALTH_POLL_S": "0.5",
        "MANGAASSIST_SERVER_TRITON_RESTART_BACKOFF_S": "0.2",
        "MANGAASSIST_LLM_LOCAL_WARMUP": "false",
        # generous stage budgets: the chat after recovery must not lose its classifier to a busy CI box
        **{f"MANGAASSIST_BUDGETS_{k}": "10000" for k in ("TOTAL_MS", "CLASSIFY_MS", "EMBED_MS", "ADAPTER_MS", "RETRIEVE_MS")},
    }
    process = ServeProcess(BUILD_DIR, scratch / "service.log", env).start(timeout_s=240)
    yield process
    process.stop()


def _stats_count(grpc_url: str, model: str) -> int:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(grpc_url)
    try:
        stats = client.get_inference_statistics(model, as_json=True)
    finally:
        client.close()
    return sum(int(s.get("inference_count", 0)) for s in stats.get("model_stats", []))


def _triton_grpc_url(pid: int) -> str:
    """tritonserver's --grpc-port from its command line (the exec wrapper keeps the server's argv)."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    port = next(a.split(b"=", 1)[1].decode() for a in argv if a.startswith(b"--grpc-port="))
    return f"127.0.0.1:{port}"


def _chat(target: str, message: str):
    from clients.sdk import MangaAssistClient

    with MangaAssistClient(target, timeout=30.0) as client:
        return client.chat(message)


def test_sigkilled_triton_is_reaped_restarted_and_the_models_answer_again(serve):
    old, members = serve.kill_triton()
    stubs = [m for m in members if m[0] != old]
    assert stubs and all(name.startswith("triton_python") for _, name in stubs), members

    assert serve.wait_health("readiness", "NOT_SERVING", timeout_s=5), serve.log_tail()
    assert serve.health("liveness") == "SERVING"
    # the supervisor killed the group before reaping the leader: no stub lives on with a dead parent
    assert wait_group_empty(old, timeout_s=10) == [], serve.log_tail()

    assert serve.wait_health("readiness", "SERVING", timeout_s=120), serve.log_tail()
    new = serve.triton_pid()
    assert new is not None and new != old
    assert [m for m in group_members(new) if m[0] != new], "the new tritonserver has no python-backend stubs"
    assert serve.health("liveness") == "SERVING"

    url = _triton_grpc_url(new)
    before = _stats_count(url, "intent_classifier")
    reply = _chat(serve.target, "can you recommend a dark fantasy series with great art?")
    assert not {"classifier_unavailable", "retrieval_unavailable"} & set(reply.degraded), reply
    # the new Triton's classifier answered it (its statistics are recorded at release: read until they arrive)
    assert settle(lambda: _stats_count(url, "intent_classifier"), lambda n: n > before) > before


def test_chaos_smoke_recovers_without_errors_or_orphans(serve):
    from benchmarks.chaos.run import run_chaos

    messages = ["can you recommend a dark fantasy series with great art?", "what is your return policy for box sets?"]
    result = asyncio.run(run_chaos(serve, messages, rate=2.0, duration_s=6.0, kill_at_s=1.0, timeout_s=10.0, settle_s=120))
    assert result["overall"]["error"] == 0, result["errors_by_code"]
    assert result["readiness_not_serving_after_s"] is not None and result["readiness_serving_again_after_s"] is not None
    assert result["stubs_left_alive"] == 0
    assert result["before_kill"]["models"] + result["before_kill"]["rule"] >= 1


def test_sigkilled_service_leaves_no_triton_or_stub_behind(serve):
    triton = serve.triton_pid()
    assert triton is not None and len(group_members(triton)) > 1
    os.kill(serve.pid, signal.SIGKILL)
    serve.proc.wait(timeout=10)
    # tritonserver dies with the service (PR_SET_PDEATHSIG); once init reaps it, the stubs see it gone
    left = wait_group_empty(triton, timeout_s=20)
    assert left == [], f"still alive after the service was SIGKILLed: {left}"
