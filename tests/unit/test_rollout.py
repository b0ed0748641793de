"""L0: the rollout file's validation, the canary's stable hash, the guards' automatic rollback and the feedback
store, without Triton (versions "exist" per a fake ``version_ready``; gate records per a fake ``gate_check``)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from server.errors import RolloutRefused
from server.rollout import config as rc
from server.rollout.controller import RolloutController
from server.rollout.feedback import FeedbackStore
from server.schema import IntentResult
from server.settings import Settings

pytestmark = pytest.mark.L0
MODEL = rc.VERSIONED_CLASSIFIER


@pytest.mark.parametrize("data, message", [
    ({"stable": "1", "canary": {"version": "2", "percent": 150}}, "outside 0-100"),
    ({"stable": "1", "canary": {"version": "2", "percent": -1}}, "outside 0-100"),
    ({"stable": "1", "canary": {"version": "1", "percent": 5}}, "is the stable version"),
    ({"stable": "two"}, "not a model version"),
    ({"stable": "1", "shards": 3}, "unknown key"),
    ({"canary": {"version": "2", "percent": 5}}, "`stable`"),
    ({"stable": "1", "model": "reranker_onnx"}, "has no rollout"),
    ([1, 2], "mapping"),
])
def test_bad_configs_are_refused_with_a_clear_error(data, message):
    with pytest.raises(RolloutRefused, match=message):
        rc.parse(data)


def test_canary_share_is_a_stable_hash_of_the_session():
    config = rc.parse({"stable": "1", "canary": {"version": "2", "percent": 10}})
    picks = [config.version_for(f"s-{i}") for i in range(20_000)]
    assert 0.09 < picks.count("2") / len(picks) < 0.11
    assert picks == [config.version_for(f"s-{i}") for i in range(20_000)]  # same session, same version
    assert config.version_for("") == "1"
    wider = rc.parse({"stable": "1", "canary": {"version": "2", "percent": 30}})
    assert all(wider.version_for(f"s-{i}") == "2" for i, v in enumerate(picks) if v == "2")  # widening keeps them


def controller(tmp_path, *, gated=("1", "2"), served=("1", "2", "3"), **guards):
    settings = Settings().replace(rollout={"file": str(tmp_path / "rollout.yaml"), "guard_min_feedback": 10, **guards}).rollout

    async def ready(model, version):
        return version in served

    def gate(model, version):
        if version not in gated:
            raise ValueError(f"{model} version {version} failed its gate")

    class Backend:
        calls: list = []

        async def classify(self, texts, *, timeout_s, version=None):
            self.calls.append(version)
            probs = np.zeros((len(texts), 8), np.float32)
            probs[:, 0] = 1.0
            return probs

    return RolloutController(settings, backend=Backend(), feedback=FeedbackStore(), version_ready=ready,
                             gate_check=gate, registry=CollectorRegistry())


async def test_a_refused_file_leaves_the_running_config(tmp_path):
    c = controller(tmp_path)
    path = tmp_path / "rollout.yaml"
    path.write_text(json.dumps({"stable": "1", "canary": {"version": "2", "percent": 10}}))
    assert await c.reload_if_changed()
    running = c.config
    for bad, why in [({"stable": "1", "canary": {"version": "3", "percent": 10}}, "failed its gate"),
                     ({"stable": "1", "canary": {"version": "7", "percent": 10}}, "unknown to Triton"),
                     ({"stable": "1", "canary": {"version": "2", "percent": 101}}, "outside 0-100")]:
        path.write_text(json.dumps(bad))
        assert not await c.reload_if_changed()
        assert why in c.last_error and c.config == running
    assert c.m_changes.labels("refused")._value.get() == 3


async def test_thumbs_down_on_the_canary_rolls_it_back_and_rewrites_the_file(tmp_path):
    c = controller(tmp_path)
    (tmp_path / "rollout.yaml").write_text(json.dumps({"stable": "1", "shadow": "2", "canary": {"version": "2", "percent": 50}}))
    await c.reload_if_changed()
    intent = IntentResult("product_question", 0.9, {})
    for i in range(200):
        versions = c.pin(f"s-{i}")
        c.feedback.remember(f"r-{i}", f"s-{i}", versions=versions)
        c.observe("text", intent, versions, 5.0, False, lambda fn: None)
        kind = "thumbs_down" if versions[MODEL] == "2" else "thumbs_up"
        c.on_feedback(c.feedback.record(f"r-{i}", f"s-{i}", kind))
        if c.config.canary is None:
            break
    assert c.config.canary is None and c.config.stable == "1" and c.config.shadow == "2"
    assert "thumbs-down" in c.events[-1]["reason"]
    assert rc.read(tmp_path / "rollout.yaml").canary is None
    assert not await c.reload_if_changed()  # its own write is not a change to apply again


async def test_shadow_runs_after_the_response_and_records_agreement(tmp_path):
    c = controller(tmp_path)
    c._loop = asyncio.get_running_loop()
    (tmp_path / "rollout.yaml").write_text(json.dumps({"stable": "1", "shadow": "2"}))
    await c.reload_if_changed()
    deferred = []
    for i in range(5):
        c.observe("hello", IntentResult("product_question", 0.9, {}), c.pin(f"s-{i}"), 3.0, False, deferred.append)
    assert len(deferred) == 5 and c.backend.calls == []  # handed to after_response: nothing before the response is out
    for job in deferred:
        job()
    for _ in range(50):
        await asyncio.sleep(0.01)
    assert c.shadow_stats["2"].summary()["agreement"] == 1.0 and c.backend.calls.count("2") == 5


def test_feedback_store_attributes_and_redacts(tmp_path):
    store = FeedbackStore(window=2, db_path=str(tmp_path / "fb.db"))
    store.remember("a", "s1", versions={MODEL: "2"}, intent="chitchat", confidence=0.4)
    rec = store.record("a", "s1", "thumbs_down", "call me at 555-123-4567 or bob@example.com")
    assert rec is not None and rec.versions == {MODEL: "2"} and "bob@example.com" not in rec.comment
    assert store.record("a", "another-session", "thumbs_up") is None
    assert store.record("unknown", "", "thumbs_up") is None
    store.remember("b", "s", versions={})
    store.remember("c", "s", versions={})
    assert store.answer("a") is None  # the window forgot the oldest
    assert store.counts(MODEL)["2"]["thumbs_down"] == 1
    store.close()


def test_cli_refuses_a_canary_without_a_gate_record_and_writes_nothing(tmp_path, capsys):
    from model_repository.lifecycle.console import main

    common = ["--lifecycle-dir", str(tmp_path / "life"), "--rollout-file", str(tmp_path / "rollout.yaml")]
    assert main(["model", "rollout", "--stable", "1", "--canary", "2:10", *common]) == 2
    assert "not in the registry" in capsys.readouterr().err and not (tmp_path / "rollout.yaml").exists()
    assert main(["model", "rollout", "--stable", "1", "--canary", "2:150", *common]) == 2
    assert "outside 0-100" in capsys.readouterr().err
    assert main(["model", "status", *common]) == 0
    assert json.loads(capsys.readouterr().out)["versions"] == []


async def test_error_guard_compares_the_canary_with_stable(tmp_path):
    c = controller(tmp_path, guard_min_requests=20, guard_max_error_rate=0.1)
    (tmp_path / "rollout.yaml").write_text(json.dumps({"stable": "1", "canary": {"version": "2", "percent": 50}}))
    await c.reload_if_changed()
    intent = IntentResult("product_question", 0.9, {})
    seen = {"1": 0, "2": 0}
    for i in range(100):  # a slow box: every version times out now and then, alike (every 5th answer)
        versions = c.pin(f"a-{i}")
        seen[versions[MODEL]] += 1
        c.observe("t", intent, versions, 5.0, seen[versions[MODEL]] % 5 == 1, None)
    assert c.config.canary is not None, c.guard_breaches()
    for i in range(100):  # the canary alone fails
        versions = c.pin(f"b-{i}")
        c.observe("t", intent, versions, 5.0, versions[MODEL] == "2" and i % 2 == 0, None)
        if c.config.canary is None:
            break
    assert c.config.canary is None and "error rate" in c.events[-1]["reason"]
