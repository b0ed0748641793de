"""L0: the Feedback RPC and a rollout on the real grpc.aio server with the fake backend (no Triton): each answer
names the version that gave it, feedback on it is recorded and attributed, and a canary the thumbs-down guard
trips is rolled back without a restart. The e2e twin on a real tritonserver: tests/e2e/test_model_lifecycle.py."""

from __future__ import annotations

import json

import grpc
import pytest
from mangaassist.v1 import mangaassist_pb2 as pb
from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

from contracts.models import VERSIONED_CLASSIFIER

pytestmark = pytest.mark.L0
MESSAGE = "is there a recent hardcover box set you would suggest"  # not decided by the rules


async def test_feedback_is_attributed_to_the_answering_version_and_trips_the_canary_guard(make_server, tmp_path):
    path = tmp_path / "rollout.yaml"
    path.write_text(json.dumps({"stable": "1", "canary": {"version": "2", "percent": 50}}))
    running = await make_server(rollout={"file": str(path), "poll_s": 0.1, "lifecycle_dir": "", "default_version": "1",
                                         "guard_min_feedback": 5})
    controller = running.pipeline.rollout
    assert controller.config is None and "no registry" in controller.last_error  # a canary needs a gate record
    controller._gate_check = lambda model, version: None  # every version gated (the e2e test gates for real)
    controller._sig = None
    assert await controller.reload_if_changed()
    async with grpc.aio.insecure_channel(running.target) as channel:
        stub = pb_grpc.MangaAssistStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Feedback(pb.FeedbackRequest(request_id="x"))  # no kind
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        seen = set()
        for i in range(60):
            reply = await stub.Chat(pb.ChatRequest(session_id=f"s-{i}", message=MESSAGE), timeout=5)
            version = dict(reply.model_versions)[VERSIONED_CLASSIFIER]
            assert version == controller.config.version_for(f"s-{i}") or controller.config.canary is None
            seen.add(version)
            kind = pb.FeedbackRequest.THUMBS_DOWN if version == "2" else pb.FeedbackRequest.THUMBS_UP
            ack = await stub.Feedback(pb.FeedbackRequest(request_id=reply.request_id, session_id=f"s-{i}", kind=kind))
            assert ack.recorded
            if controller.config.canary is None:
                break
        assert seen == {"1", "2"} and controller.config.canary is None
        assert "thumbs-down" in controller.events[-1]["reason"]
        reply = await stub.Chat(pb.ChatRequest(session_id="after", message=MESSAGE), timeout=5)
        assert dict(reply.model_versions) == {VERSIONED_CLASSIFIER: "1"}
        record = running.pipeline.feedback_store.recent(1)[0]
        assert record.versions == {VERSIONED_CLASSIFIER: "2"} and record.kind == "thumbs_down"
        stale = await stub.Feedback(pb.FeedbackRequest(request_id="unknown", kind=pb.FeedbackRequest.THUMBS_UP))
        assert not stale.recorded


def _sessions(lo: float, hi: float, n: int, tag: str) -> list[str]:
    """``n`` session ids whose canary bucket lies in [lo %, hi %) (config.py ``bucket``): which version answers them
    at each step is known in advance."""
    from server.rollout.config import BUCKETS, bucket

    out, i = [], 0
    while len(out) < n:
        sid = f"{tag}-{i}"
        if lo * BUCKETS / 100 <= bucket(sid) < hi * BUCKETS / 100:
            out.append(sid)
        i += 1
    return out


async def test_a_plan_moves_the_canary_on_statistics_and_rolls_a_worse_one_back(make_server, tmp_path):
    """1 % -> 5 % -> 25 % on clean scripted feedback (each step held for its dwell on a fake clock and its answers),
    then thumbs down on every canary answer: the schedule's interval shows it worse and the canary is rolled back.
    Every step is observed in the ``model_versions`` of real responses."""
    from server.rollout.schedule import RolloutSchedule

    n = 12  # answers per version per step: with no bad feedback the one-sided 97.5 % bounds are below 0.3
    step = {"dwell_s": 60, "min_samples": n}
    plan = {"version": "2", "steps": [{"percent": p, **step} for p in (1, 5, 25, 100)]}
    path = tmp_path / "rollout.yaml"
    path.write_text(json.dumps({"stable": "1", "canary": {"version": "2", "percent": 1}, "plan": plan}))
    running = await make_server(rollout={
        "file": str(path), "poll_s": 0.1, "lifecycle_dir": "", "default_version": "1", "plan_interval_s": 3600,
        "guard_max_thumbs_down_delta": 0.3, "guard_max_escalation_delta": 0.3, "guard_min_feedback": 5})
    controller = running.pipeline.rollout
    controller._gate_check = lambda model, version: None  # every version gated (the e2e test gates for real)
    controller._sig = None
    assert await controller.reload_if_changed() and controller.config.phase() == ("canary", 0)
    job = next(j for j in running.jobs if isinstance(j, RolloutSchedule))  # the job start_server runs (unleased here)
    now = [1000.0]
    job.clock = lambda: now[0]
    canary, stable = _sessions(0, 1, n, "c"), _sessions(50, 100, n, "s")
    probes = {5: _sessions(1, 5, 1, "p5")[0], 25: _sessions(5, 25, 1, "p25")[0]}
    async with grpc.aio.insecure_channel(running.target) as channel:
        stub = pb_grpc.MangaAssistStub(channel)

        async def chat(sid: str) -> str:
            reply = await stub.Chat(pb.ChatRequest(session_id=sid, message=MESSAGE), timeout=5)
            return dict(reply.model_versions)[VERSIONED_CLASSIFIER], reply.request_id

        async def round_of(canary_kind) -> None:
            for sids, expect, kind in ((canary, "2", canary_kind), (stable, "1", pb.FeedbackRequest.THUMBS_UP)):
                for sid in sids:
                    version, request_id = await chat(sid)
                    assert version == expect
                    ack = await stub.Feedback(pb.FeedbackRequest(request_id=request_id, session_id=sid, kind=kind))
                    assert ack.recorded

        assert (await chat(probes[5]))[0] == "1"
        await round_of(pb.FeedbackRequest.THUMBS_UP)
        assert (await job.run_once()).action == "hold"  # first look: the step's dwell starts now
        now[0] += 61
        decision = await job.run_once()
        assert decision.action == "progress", decision.reason
        assert controller.config.canary.percent == 5 and (await chat(probes[5]))[0] == "2"
        assert (await chat(probes[25]))[0] == "1"
        now[0] += 61
        decision = await job.run_once()  # dwell passed, but the 5 % step has counted one answer of its own (the probe)
        assert decision.action == "hold" and f"1/{n} answers" in decision.reason
        await round_of(pb.FeedbackRequest.THUMBS_UP)
        now[0] += 61
        assert (await job.run_once()).action == "progress" and controller.config.canary.percent == 25
        assert (await chat(probes[25]))[0] == "2"
        assert json.loads(path.read_text())["canary"]["percent"] == 25  # a restart resumes the step
        await round_of(pb.FeedbackRequest.THUMBS_DOWN)  # the canary is now clearly worse
        decision = await job.run_once()  # no dwell needed to abort
        assert decision.action == "abort" and "thumbs-down share significantly worse" in decision.reason
        assert controller.config.canary is None and controller.config.plan is None
        assert controller.events[-1]["outcome"] == "rolled_back"
        assert {(await chat(sid))[0] for sid in canary[:3] + list(probes.values())} == {"1"}
        assert [e["outcome"] for e in controller.events][-4:] == ["applied", "progressed", "progressed", "rolled_back"]
