"""L0: the flywheel's retrain is judged on phrasings it never saw (issue 22.8), and a retrain that only memorised its
rows is stopped there.

``flywheel.retrain`` runs for real down to the gate -- its training, Triton load and the served classifier are stubs
(a table of which messages each version gets wrong), the gate's ``run_gate`` is the real one over the real frozen
unseen-template set (tests/fixtures/flywheel_unseen). The champion misses the flywheel's slang rows and the
unseen set's messages written with the flywheel's new words (``flywheel_slang``) on its target intents. Two retrains:

* the *memoriser* gets exactly the rows it learnt right and nothing else (what a classifier trained on the template
  strings alone does): perfect on its own rows, no gain on the unseen set -> the gate FAILS it on ``unseen_gain``;
* the *generaliser* also gets the unseen slang right -> every check passes.

The benchmark with the real retrain: ``python -m benchmarks.lifecycle.flywheel_generalisation``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from benchmarks.drift.simulate import SLANG
from model_repository.lifecycle import flywheel, gate, serving, versions
from model_repository.lifecycle.answers import compare
from model_repository.lifecycle.generalisation import TARGET_INTENTS, load_unseen
from server.intents import INTENT_LABELS
from server.retrieval.query import expand

pytestmark = pytest.mark.L0

SERIES = ("Frieren", "Blue Lock", "Dandadan", "Kingdom", "Monster", "Nana")


def own_rows() -> list[dict[str, str]]:
    """The flywheel's labelled slang: its own templates (the drift simulation's SLANG), as the labeller labels them."""
    rng = random.Random(5)
    rows = {}
    for template, label in SLANG:
        for s in SERIES:
            text = template.format(s=s, n=rng.randint(1, 12))
            rows[text] = {"text": text, "label": label}
    return list(rows.values())


def wrong_label(label: str) -> str:
    return INTENT_LABELS[(INTENT_LABELS.index(label) + 1) % len(INTENT_LABELS)]


class Stub:
    """``probs(texts, version)``: one-hot on the truth unless the version's table says otherwise (texts arrive as
    the served path sends them: message + glosses)."""

    url = "stub-flywheel-generalisation"

    def __init__(self, truth: dict[str, str], wrong: dict[str, dict[str, str]]) -> None:
        self.truth, self.wrong = truth, wrong

    def probs(self, texts: list[str], version: str) -> np.ndarray:
        out = np.zeros((len(texts), len(INTENT_LABELS)), np.float32)
        for i, text in enumerate(texts):
            out[i, INTENT_LABELS.index(self.wrong[version].get(text, self.truth[text]))] = 1.0
        return out


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    data = tmp_path / "data"
    (data / "intents").mkdir(parents=True)
    test_rows = [{"text": f"{label} split message {i}", "label": label} for label in INTENT_LABELS for i in range(10)]
    (data / "intents" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test_rows))
    hand = tmp_path / "hand.jsonl"
    hand.write_text("".join(json.dumps({"text": f"{label} hand message {i}", "label": label}) + "\n"
                            for label in INTENT_LABELS for i in range(5)))
    own, unseen = own_rows(), load_unseen()
    truth = {expand(r["text"]): r["label"] for r in test_rows + own + unseen}
    truth.update({expand(json.loads(line)["text"]): json.loads(line)["label"]
                  for line in hand.read_text().splitlines()})
    unseen_slang = {expand(r["text"]): wrong_label(r["label"]) for r in unseen
                    if r["kind"] == "flywheel_slang" and r["label"] in TARGET_INTENTS}
    champion_wrong = {**{expand(r["text"]): wrong_label(r["label"]) for r in own}, **unseen_slang}
    memorised = {k: v for k, v in champion_wrong.items() if k in unseen_slang}  # right on its own rows only
    clf = Stub(truth, {"1": champion_wrong, "2": memorised, "3": {}})
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("".join(json.dumps(r) + "\n" for r in own))

    world = SimpleNamespace(next_version="2", overrides=None, clf=clf, unseen_slang=len(unseen_slang))

    def new_version(spec: Any, *, lifecycle_dir: Path, **_: Any) -> Any:  # the training: the stub's table instead
        (Path(lifecycle_dir) / "models" / versions.MODEL / world.next_version).mkdir(parents=True)
        return SimpleNamespace(triton_version=world.next_version)

    def gate_and_record(url: str, challenger: str, *, champion: str, overrides: dict, **_: Any) -> gate.GateReport:
        world.overrides = overrides
        clock = SimpleNamespace(now=0.0)

        def tick() -> float:  # every call takes 5 ms on the fake clock: speed checks pass alike
            clock.now += 0.005
            return clock.now

        rows = [{"id": f"r{i}", "message": f"m{i}", "factual": True, "relevance": True, "intent_match": True,
                 "complete": True, "fabricated": 0, "answered_intent": "chitchat", "answer": "a"} for i in range(20)]
        return gate.run_gate(url, challenger, champion, data, overrides=overrides, requests=20, seconds=0.5,
                             concurrency=1, classifier=clf, clock=tick, handwritten=hand,
                             answer_fn=lambda ch, base: compare(rows, rows, champion=base, challenger=ch, differing=[]))

    monkeypatch.setattr(versions, "new_version", new_version)
    monkeypatch.setattr(serving, "load", lambda urls, repo: None)
    monkeypatch.setattr(gate, "gate_and_record", gate_and_record)
    monkeypatch.setattr(gate, "TritonClassifier", lambda url: clf)
    world.retrain = lambda: flywheel.retrain(
        [labelled], build_dir=tmp_path, repo=tmp_path / "repo", registry=SimpleNamespace(alias=lambda m, a: "1"),
        lifecycle_dir=tmp_path / "life", triton_url="stub", log=lambda line: None)
    return world


def test_a_retrain_that_memorised_its_rows_is_stopped_on_the_unseen_templates(world):
    world.next_version = "2"
    result = world.retrain()
    f, g = result.fixed, result.gate.figures
    assert f["champion_right"] == 0 and f["challenger_right"] == f["n"] == len(own_rows())  # perfect on its rows
    assert {k: world.overrides[k] for k in flywheel.RETRAIN_CHECKS} == flywheel.RETRAIN_CHECKS
    assert g["unseen_gain"] == 0.0 and g["unseen_drop"] == 0.0 and g["unseen_accuracy"] < 1.0
    assert not result.gate.passed and result.gate.failed == ["unseen_gain"], result.gate.lines()
    assert "gain +0.000" in result.generalisation and f"{f['n']}/{f['n']}" in result.generalisation


def test_a_retrain_that_learnt_the_slang_passes(world):
    world.next_version = "3"
    result = world.retrain()
    g = result.gate.figures
    target = sum(r["label"] in TARGET_INTENTS for r in load_unseen())
    assert g["unseen_accuracy"] == 1.0 and g["unseen_gain"] == pytest.approx(world.unseen_slang / target, abs=1e-4)
    assert result.gate.passed, result.gate.lines()
    assert {c.name for c in result.gate.checks} >= {"unseen_gain", "unseen_drop", "handwritten_drop", "accuracy"}
