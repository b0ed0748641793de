"""L1: the flywheel end to end on a real tritonserver, small settings (~3-5 min on two shared cores).

A "week" of production traffic in which a new slang appears (benchmarks/drift/simulate.py's templates: "no cap",
"bussin", "yeet it back") next to ordinary held-out messages, classified by the champion on Triton and written
to a real traffic log (SQLite) with its confidence -- some customers press thumbs-down. Then the operator's
commands, as a person runs them: ``mangaassist drift label-export`` (low-confidence and thumbs-down turns ->
Label Studio tasks), a labeller answers every task (here: the intent the message was written for), and
``mangaassist retrain labelled.json`` trains version 2 from the champion, has the *running* Triton load it (explicit
model control: no restart), gates it against the champion and puts it in shadow.

The property: version 2 gets right the logged messages the champion got wrong -- and slang messages about
other series that no labeller saw -- while the gate (accuracy, per-class F1 drops) holds on the test split.
"""

from __future__ import annotations

import io
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from benchmarks.drift.simulate import SLANG  # the new slang of the drift simulation, as its labeller labels it
from model_repository.build import DEFAULT_BUILD_DIR
from model_repository.lifecycle import cli as lifecycle_cli
from model_repository.lifecycle import versions
from model_repository.lifecycle.flywheel import flywheel_accuracy
from model_repository.lifecycle.gate import TritonClassifier
from model_repository.lifecycle.registry import CHAMPION
from model_repository.lifecycle.drift import main as drift_main
from server.retrieval.query import expand
from server.rollout import config as rollout_config
from server.traffic.record import TrafficRecord
from server.traffic.store import SQLiteTrafficStore
from server.triton_runtime import TritonServer
from tests.support.lifecycle import classifier_repository

pytestmark = pytest.mark.L1

BUILD_DIR = Path(os.environ.get("MANGAASSIST_BUILD_DIR", DEFAULT_BUILD_DIR))
MODEL = versions.MODEL
#: the CI box is not a latency rig: the gate's accuracy checks at their defaults, the timing floors loosely
LOOSE_TIMING = ["--threshold", "p99_ms=2000", "--threshold", "throughput_ratio=0.3"]
#: the shipped retrain must gain on the frozen unseen-template set (flywheel.RETRAIN_CHECKS: unseen_gain >= 0.005,
#: one message of 112); this retrain gains exactly one (0.857 -> 0.866, benchmarks/results/flywheel_generalisation),
#: so here the loop is held to "no loss on phrasings it never saw" -- the gain check itself is judged in L0
#: (tests/unit/test_flywheel_generalisation.py: a memorising retrain fails on it)
NO_UNSEEN_LOSS = ["--threshold", "unseen_gain=0.0"]


def slang(rng: random.Random, series: list[str], n: int) -> list[dict[str, str]]:
    rows = []
    for _ in range(n):
        template, label = rng.choice(SLANG)
        rows.append({"text": template.format(s=rng.choice(series), n=rng.randint(1, 12)), "label": label})
    return rows


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Any:
    root = tmp_path_factory.mktemp("flywheel")
    repo, life, registry = classifier_repository(BUILD_DIR, root, "the flywheel test")
    with TritonServer(repo, model_control="explicit") as triton:
        yield type("World", (), {"root": root, "repo": repo, "life": life, "registry": registry, "triton": triton})()


@pytest.mark.timeout(1500)  # a fine-tune + export + gate: 250-800 s with the box's load (hang detector only)
def test_labelled_low_confidence_traffic_retrains_a_version_that_fixes_it(world):
    rng = random.Random(29)
    series = [json.loads(line)["series"] for line in (BUILD_DIR / "data" / "series.jsonl").read_text().splitlines()
              if line.strip()]
    rng.shuffle(series)
    seen_series, unseen_series = series[: len(series) // 2], series[len(series) // 2 :]
    ordinary = rng.sample(versions.read_jsonl(BUILD_DIR / "data" / "intents" / "validation.jsonl"), 120)
    week = slang(rng, seen_series, 60) + [{"text": r["text"], "label": r["label"]} for r in ordinary]
    rng.shuffle(week)
    truth = {r["text"]: r["label"] for r in week}

    # the week on the champion, into the traffic log; a wrong answer gets a thumbs-down now and then
    clf = TritonClassifier(world.triton.grpc_url)
    probs = [p for i in range(0, len(week), 32) for p in clf.probs([expand(r["text"]) for r in week[i : i + 32]], "1")]
    from server.intents import INTENT_LABELS

    records = []
    for i, (row, p) in enumerate(zip(week, probs)):
        intent = INTENT_LABELS[int(p.argmax())]
        records.append(TrafficRecord(
            ts=1_790_000_000.0 + i, request_id=f"req-{i}", model_versions={"intent_classifier": "1"}, intent=intent,
            confidence=float(p.max()), message=row["text"], tier="template",
            feedback="thumbs_down" if intent != row["label"] and i % 2 == 0 else ""))
    db = world.root / "traffic.db"
    store = SQLiteTrafficStore(str(db))
    store.write(records)
    store.close()

    tasks_path, labelled_path = world.root / "tasks.json", world.root / "labelled.json"
    assert drift_main(["label-export", "--sqlite", str(db), "--out", str(tasks_path), "--below", "0.8",
                       "--feedback-db", ""]) == 0
    tasks = json.loads(tasks_path.read_text())
    labelled = [{**task, "id": i, "annotations": [{"id": i, "was_cancelled": False, "result": [
        {"from_name": "intent", "to_name": "text", "type": "choices",
         "value": {"choices": [truth[task["data"]["text"]]]}}]}]} for i, task in enumerate(tasks)]
    labelled_path.write_text(json.dumps(labelled))
    queue = [{"text": t["data"]["text"], "label": truth[t["data"]["text"]]} for t in tasks]
    wrong = [r for r, right in zip(queue, flywheel_accuracy(clf, queue, "1")) if not right]
    assert len(wrong) >= 8, f"the champion must get some of the queue wrong for the loop to show anything: {len(wrong)}"

    triton_pid = world.triton.pid
    out = io.StringIO()
    rc = lifecycle_cli.main(["retrain", str(labelled_path), "--lifecycle-dir", str(world.life), "--repository",
                             str(world.repo), "--build-dir", str(BUILD_DIR), "--triton", world.triton.grpc_url,
                             "--requests", "40", "--seconds", "1", "--concurrency", "2",
                             "--golden", str(BUILD_DIR / "golden" / "golden.jsonl"), "--answer-sample", "120",
                             *LOOSE_TIMING, *NO_UNSEEN_LOSS], out)
    print(out.getvalue())
    assert rc == lifecycle_cli.EXIT_OK, out.getvalue()

    v2 = world.registry.version(MODEL, "2")
    assert v2 is not None and v2.lineage["parent"] == "1" and world.registry.alias(MODEL, CHAMPION) == "1"
    assert world.triton.pid == triton_pid and world.triton.starts == 1  # loaded live, no restart
    assert rollout_config.read(world.life / "rollout.yaml").shadow == "2"
    world.registry.require_gate(MODEL, "2")  # a passing gate record for exactly this file

    # the fixes: the queue's messages the champion got wrong, and slang about series no labeller saw
    fixed = flywheel_accuracy(clf, wrong, "2")
    right = [r for r in queue if r not in wrong]
    print(f"[flywheel e2e] queue {len(queue)}: champion wrong on {len(wrong)}, version 2 fixed {sum(fixed)}")
    # the queue holds the validation split's genuinely ambiguous messages too: the retrain keeps the checkpoint that
    # learnt most of it without a held-out regression (measured: 9 of 20 fixed), not one that memorised it all
    assert sum(fixed) >= 0.3 * len(wrong), f"version 2 fixed {sum(fixed)}/{len(wrong)} of the champion's mistakes"
    assert all(flywheel_accuracy(clf, right, "2")), "version 2 broke a queued message the champion got right"
    unseen = slang(random.Random(31), unseen_series, 80)
    before, after = sum(flywheel_accuracy(clf, unseen, "1")), sum(flywheel_accuracy(clf, unseen, "2"))
    print(f"[flywheel e2e] slang about series no labeller saw: champion {before}/80, version 2 {after}/80")
    assert after >= before + 0.05 * len(unseen), (before, after)  # measured: 56 -> 65 of 80
