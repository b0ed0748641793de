"""L0: the Feedback RPC and a rollout on the real grpc.aio server with the fake backend (no Triton): each answer
names the version that gave it, feedback on it is recorded and attributed, and a canary the thumbs-down guard
trips is rolled back without a restart. The e2e twin on a real tritonserver: tests/e2e/test_model_lifecycle.py."""

from __future__ import annotations

import json

import grpc
import pytest
from mangaassist.v1 import mangaassist_pb2 as pb
from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

from model_repository.contract import VERSIONED_CLASSIFIER

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
