"""The gate's answer check (model_repository/lifecycle/answering.py + answers.py), on the service's
request path with a deterministic two-version classifier: records the versions route alike get identical answers
(the claim that lets the gate answer only the others twice), and a challenger that confuses two intents fails the
answer checks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from model_repository.lifecycle.gate import Check
from model_repository.lifecycle import answering as answers
from model_repository.lifecycle import answers as gate_answers
from server.app import build_components
from server.backends.fake import FakeBackend
from server.intents import LABEL_TO_ID
from server.settings import Settings
from tests.support.requirements import require

pytestmark = pytest.mark.L0

BUILD = Path(__file__).resolve().parents[2] / ".build"
GOLDEN = BUILD / "golden" / "golden.jsonl"


class TwoVersions(FakeBackend):
    """Version "1": the fake classifier; version "2": the same, but price questions read as product questions."""

    def __init__(self) -> None:
        super().__init__()
        self.versions: list[str | None] = []

    async def classify(self, texts, *, timeout_s: float, version: str | None = None) -> np.ndarray:
        self.versions.append(version)
        probs = np.array(await super().classify(texts, timeout_s=timeout_s))
        if version == "2":
            a, b = LABEL_TO_ID["price_deal"], LABEL_TO_ID["product_question"]
            probs[:, [a, b]] = probs[:, [b, a]]
        return probs


@pytest.fixture(scope="module")
def golden():
    require("build", GOLDEN.is_file(), f"needs the golden set ({GOLDEN})")
    from model_repository.lifecycle.evaluation import dimensions

    return gate_answers.sample_of(dimensions.load_golden(GOLDEN), 120)


def _answered(golden, *, every: bool):
    settings = answers.gate_settings(Settings())
    components = build_components(settings, fake_backend=True)
    backend = TwoVersions()
    records = [{"id": r.id, "message": r.message, "customer_id": r.customer_id} for r in golden]
    out = asyncio.run(answers.answer_records(settings, components, records, classifier=backend, rest=FakeBackend(),
                                             champion="1", challenger="2", every=every))
    return out, backend


SAME = ("answer", "intent", "tier", "cards", "guardrail_actions", "degraded", "rule_decided")


def test_records_routed_alike_get_identical_answers(golden):
    out, backend = _answered(golden, every=True)
    first, second = out["answers"]["1"], out["answers"]["2"]
    assert set(second) == set(first)  # every=True: the challenger answered all of them
    differing = set(out["differing"])
    assert 0 < len(differing) < len(first), len(differing)
    for rid, a in first.items():
        b = second[rid]
        if rid in differing:
            continue
        assert {k: a.get(k) for k in SAME} == {k: b.get(k) for k in SAME}, rid
    assert sum(first[r].get("intent") != second[r].get("intent") for r in differing) >= len(differing) // 2
    assert {"1", "2"} <= set(backend.versions) and None not in backend.versions  # always an explicit version


def test_only_differing_records_are_answered_twice_and_a_confused_challenger_fails(golden):
    from model_repository.lifecycle.evaluation.facts import StoreFacts
    from model_repository.lifecycle.evaluation import dimensions

    out, _ = _answered(golden, every=False)
    assert set(out["answers"]["2"]) == set(out["differing"])
    facts, scorer = StoreFacts.load(BUILD / "data"), dimensions.rouge_scorer()
    by_id = {r.id: r for r in golden}
    base = {i: gate_answers.judge_one(by_id[i], a, facts, scorer) for i, a in out["answers"]["1"].items()}
    new = base | {i: gate_answers.judge_one(by_id[i], a, facts, scorer) for i, a in out["answers"]["2"].items()}
    figures = gate_answers.compare([base[r.id] for r in golden], [new[r.id] for r in golden], champion="1",
                                   challenger="2", differing=out["differing"])
    checks = {name: Check(name, op, value, figures[name]) for name, (op, value) in gate_answers.CHECKS.items()}
    assert checks["answer_intent_drop"].status == "FAIL", figures
    assert figures["rates"]["1"]["intent"] > figures["rates"]["2"]["intent"]
    assert figures["worse"] and all(w["id"] in out["differing"] for w in figures["worse"])


def test_a_challenger_identical_to_the_champion_passes():
    rows = [{"id": "a", "message": "m", "factual": True, "relevance": True, "intent_match": True, "complete": False, "fabricated": 0,
             "answered_intent": "chitchat", "answer": "hi"}]
    figures = gate_answers.compare(rows, rows, champion="1", challenger="2", differing=[])
    assert all(Check(n, op, v, figures[n]).status == "pass" for n, (op, v) in gate_answers.CHECKS.items())


def test_gate_commands_pass_the_answer_options(monkeypatch, tmp_path):
    """`mangaassist eval --gate --challenger N` and `mangaassist model gate` both hand the answer options to the gate."""
    from model_repository.lifecycle import console as client_cli
    from model_repository.lifecycle import cli as lifecycle_cli
    from model_repository.lifecycle import gate as gate_module

    seen = []

    def fake_gate(url, challenger, *, answers, **kwargs):
        seen.append((url, challenger, answers))
        raise ValueError("stop here")  # reported as a refusal (exit 2): nothing else runs

    monkeypatch.setattr(gate_module, "gate_and_record", fake_gate)
    code = client_cli.main(["eval", "--gate", "--challenger", "3", "--triton", "t:1", "--answer-sample", "7",
                            "--golden", str(tmp_path / "g.jsonl"), "--lifecycle-dir", str(tmp_path)])
    assert code == lifecycle_cli.EXIT_REFUSED
    code = lifecycle_cli.main(["gate", "--challenger", "4", "--triton", "t:2", "--answer-sample", "0",
                               "--service-config", str(tmp_path / "c.yaml"), "--lifecycle-dir", str(tmp_path)])
    assert code == lifecycle_cli.EXIT_REFUSED
    (u1, c1, a1), (u2, c2, a2) = seen
    assert (u1, c1, a1.sample, a1.golden) == ("t:1", "3", 7, tmp_path / "g.jsonl")
    assert (u2, c2, a2.sample, a2.service_config) == ("t:2", "4", 0, tmp_path / "c.yaml")
