"""L0: the model gate stops a slightly worse model, one check at a time, and its record pins the file it judged.

The gate (model_repository/lifecycle/gate.py ``run_gate``) runs here on a stub classifier: a deterministic table of
which rows each version gets wrong, and a fake clock that each call advances by the version's latency, so every
figure is exact (no wall clock, no Triton). Against a champion at 0.96 accuracy, each challenger is worse in one way
only -- a 3-point F1 drop on one class, 3 points on the hand-written set alone, 2.1 points of accuracy, a p99 tail,
lower throughput, one extra fabricated fact in the answer sample -- and must FAIL at the shipped thresholds, on that
check; a neutral challenger must PASS every check.

Then the sha256: ``gate_and_record`` hashes the judged file, and ``mangaassist model promote``/``rollout`` and the
service's rollout (``RegistryGate`` in the RolloutController) refuse a served file that hashes otherwise -- one test
per refusal branch.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from contracts.models import CLASSIFIER_FLOORS, INTENT_LABELS
from model_repository.lifecycle import gate as gate_module
from model_repository.lifecycle.answers import compare
from model_repository.lifecycle.gate import MODEL_GATE_DEFAULTS as DEFAULTS
from model_repository.lifecycle.gate import gate_and_record, run_gate, served_file
from model_repository.lifecycle.registry import CHAMPION, GateRequired, Registry, sha256_file

pytestmark = pytest.mark.L0

MODEL = gate_module.MODEL
CHAMPION_V, CHALLENGER_V = "1", "2"
PER_CLASS, HAND_PER_CLASS = 125, 25  # 1,000 test rows (1 row = 0.1 point), 200 hand-written rows (1 row = 0.5 point)


# ------------------------------------------------------------------------------------------ the stub world
def split_text(label: str, i: int) -> str:
    return f"{label} test message {i}"


def hand_text(label: str, i: int) -> str:
    return f"{label} hand-written message {i}"


def nxt(label: str, k: int = 1) -> str:
    return INTENT_LABELS[(INTENT_LABELS.index(label) + k) % len(INTENT_LABELS)]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("gate-data")
    (root / "intents").mkdir()
    rows = [{"text": split_text(label, i), "label": label} for label in INTENT_LABELS for i in range(PER_CLASS)]
    (root / "intents" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    hand = root / "handwritten.jsonl"
    hand.write_text("".join(json.dumps({"text": hand_text(label, i), "label": label}) + "\n"
                            for label in INTENT_LABELS for i in range(HAND_PER_CLASS)))
    return root, hand


#: the champion: 5 test rows of each class answered as the next class (0.96, every class F1 0.96) and one
#: hand-written row of each (0.96)
CHAMPION_WRONG: dict[str, str] = {
    **{split_text(label, i): nxt(label) for label in INTENT_LABELS for i in range(5)},
    **{hand_text(label, 0): nxt(label) for label in INTENT_LABELS},
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


_URLS = itertools.count()


class StubClassifier:
    """``probs(texts, version)``: one-hot on the row's label unless the version's table says otherwise; each call
    advances the fake clock by ``latency(version, n)`` ms (n = the version's call count)."""

    def __init__(self, truth: dict[str, str], wrong: dict[str, dict[str, str]],
                 latency: Callable[[str, int], float], clock: FakeClock) -> None:
        self.url = f"stub-{next(_URLS)}"  # accuracy_report caches by url: one stub, one cache entry
        self.truth, self.wrong, self.latency, self.clock = truth, wrong, latency, clock
        self.calls: dict[str, int] = {}

    def probs(self, texts: list[str], version: str) -> np.ndarray:
        n = self.calls.get(version, 0)
        self.calls[version] = n + 1
        self.clock.now += self.latency(version, n) / 1000
        out = np.zeros((len(texts), len(INTENT_LABELS)), np.float32)
        for row, text in enumerate(texts):
            label = self.wrong.get(version, {}).get(text, self.truth.get(text, INTENT_LABELS[0]))
            out[row, INTENT_LABELS.index(label)] = 1.0
        return out


def truth_table() -> dict[str, str]:
    return {**{split_text(label, i): label for label in INTENT_LABELS for i in range(PER_CLASS)},
            **{hand_text(label, i): label for label in INTENT_LABELS for i in range(HAND_PER_CLASS)}}


def steady(ms: float) -> Callable[[int], float]:
    return lambda n: ms


def answer_rows(n: int = 50, fabricated_at: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "message": f"m{i}", "factual": True, "relevance": True, "intent_match": True, "complete": True,
             "fabricated": int(i in fabricated_at), "answered_intent": "product_question", "answer": "a"}
            for i in range(n)]


def same_answers(challenger: str, champion: str) -> dict[str, Any]:
    rows = answer_rows()
    return compare(rows, rows, champion=champion, challenger=challenger, differing=[])


def gate(data, *, extra_wrong: dict[str, str] | None = None, latency: Callable[[int], float] = steady(10.0),
         answer_fn: Callable[[str, str], dict[str, Any]] = same_answers, overrides=None, **kwargs: Any):
    """The gate on the stub: champion v1 (10 ms a call), challenger v2 = the champion's table + ``extra_wrong``."""
    data_dir, hand = data
    clock = FakeClock()
    lat = {CHAMPION_V: steady(10.0), CHALLENGER_V: latency}
    clf = StubClassifier(truth_table(), {CHAMPION_V: CHAMPION_WRONG, CHALLENGER_V: {**CHAMPION_WRONG, **(extra_wrong or {})}},
                         lambda v, n: lat[v](n), clock)
    return run_gate("stub", CHALLENGER_V, CHAMPION_V, data_dir, overrides=overrides, requests=200, seconds=3.0,
                    concurrency=1, classifier=clf, answer_fn=answer_fn, clock=clock, handwritten=hand, **kwargs)


# ------------------------------------------------------------------------------------------ each check stops one
def test_the_gate_runs_at_the_shipped_thresholds():
    """These tests judge the defaults the CLI ships with; the floors are the design's, defined once."""
    assert DEFAULTS["accuracy"] == (">=", 0.90) == (">=", CLASSIFIER_FLOORS["accuracy"])
    assert DEFAULTS["min_class_f1"] == (">=", 0.85) and DEFAULTS["p99_ms"] == ("<=", 50.0)
    assert {k: DEFAULTS[k] for k in ("accuracy_drop", "max_class_drop", "handwritten_drop")} == dict.fromkeys(
        ("accuracy_drop", "max_class_drop", "handwritten_drop"), ("<=", 0.02))
    assert DEFAULTS["throughput_ratio"] == (">=", 0.8) and DEFAULTS["answer_fabricated_increase"] == ("<=", 0.0)
    from model_repository.lifecycle.gate import MODEL_FLOORS

    assert MODEL_FLOORS == {"intent_accuracy": DEFAULTS["accuracy"], "min_class_f1": DEFAULTS["min_class_f1"]}


def test_a_neutral_challenger_passes_every_check(data):
    report = gate(data)
    assert report.passed, report.lines()
    assert [c.status for c in report.checks] == ["pass"] * len(DEFAULTS)
    f = report.figures
    assert (f["accuracy"], f["accuracy_drop"], f["max_class_drop"], f["handwritten_drop"]) == (0.96, 0.0, 0.0, 0.0)
    assert (f["p99_ms"], f["throughput_ratio"], f["answer_fabricated_increase"]) == (10.0, 1.0, 0)


def test_a_three_point_drop_on_one_class_fails(data):
    victim = "order_status"  # 7 more of its rows answered wrong, one to each other class: F1 0.96 -> 0.93
    extra = {split_text(victim, 5 + k): nxt(victim, 1 + k) for k in range(7)}
    report = gate(data, extra_wrong=extra)
    assert not report.passed and report.failed == ["max_class_drop"], report.lines()
    drops = report.figures["class_drops"]
    assert drops[victim] == pytest.approx(0.03) and max(d for k, d in drops.items() if k != victim) < 0.005
    assert report.figures["accuracy_drop"] == pytest.approx(0.007)  # 0.7 points overall: the class check alone sees it


def test_a_drop_on_the_hand_written_set_only_fails(data):
    extra = {hand_text(label, 1): nxt(label, 2) for label in INTENT_LABELS[:6]}  # 6 of 200: 3 points
    report = gate(data, extra_wrong=extra)
    assert not report.passed and report.failed == ["handwritten_drop"], report.lines()
    assert report.figures["handwritten_drop"] == pytest.approx(0.03)
    assert report.figures["accuracy_drop"] == 0.0 and report.figures["max_class_drop"] == 0.0


def test_two_point_one_points_of_accuracy_fails(data):
    extra = {split_text(label, 5 + k): nxt(label, 2)
             for c, label in enumerate(INTENT_LABELS) for k in range(3 if c < 5 else 2)}  # 21 rows of 1,000
    assert len(extra) == 21
    report = gate(data, extra_wrong=extra)
    assert not report.passed and "accuracy_drop" in report.failed, report.lines()
    assert report.figures["accuracy_drop"] == pytest.approx(0.021) and report.figures["accuracy"] == pytest.approx(0.939)
    # spread over every class, any accuracy drop moves some class's F1 as far; with the class check out of the way
    # the accuracy check stops it alone
    alone = gate(data, extra_wrong=extra, overrides={"max_class_drop": 0.05})
    assert alone.failed == ["accuracy_drop"], alone.lines()


def test_a_p99_regression_fails(data):
    # 1 call in 50 takes 80 ms, the rest 10 ms: p99 80 ms, throughput still 0.88x
    report = gate(data, latency=lambda n: 80.0 if n % 50 == 49 else 10.0)
    assert not report.passed and report.failed == ["p99_ms"], report.lines()
    assert report.figures["p99_ms"] == 80.0 and report.figures["throughput_ratio"] >= 0.8


def test_a_throughput_drop_fails(data):
    report = gate(data, latency=steady(15.0))  # p99 15 ms (inside 50), 2/3 of the champion's throughput
    assert not report.passed and report.failed == ["throughput_ratio"], report.lines()
    assert report.figures["throughput_ratio"] == pytest.approx(10 / 15, abs=0.01)


def test_one_extra_fabricated_fact_in_the_answer_sample_fails(data):
    def one_more(challenger: str, champion: str) -> dict[str, Any]:
        return compare(answer_rows(), answer_rows(fabricated_at=(17,)), champion=champion, challenger=challenger,
                       differing=["r17"])

    report = gate(data, answer_fn=one_more)
    assert not report.passed and report.failed == ["answer_fabricated_increase"], report.lines()
    assert report.figures["answer_fabricated_increase"] == 1


def test_a_check_the_run_could_not_measure_does_not_pass(data):
    def unmeasured(challenger: str, champion: str) -> dict[str, Any]:
        figures = same_answers(challenger, champion)
        figures["answer_relevance_drop"] = None  # e.g. no record in the sample had a relevance judgement
        return figures

    report = gate(data, answer_fn=unmeasured)
    assert not report.passed and report.failed == ["answer_relevance_drop"], report.lines()


# ------------------------------------------------------------------------------------------ the file judged
@pytest.fixture(scope="module")
def lifecycle_template(tmp_path_factory) -> Path:
    """A registry with versions 1 (champion), 2 and 3, each a distinct file in a repository laid out like Triton's
    (built once: a fresh MLflow database takes seconds; each test gets a copy)."""
    root = tmp_path_factory.mktemp("lifecycle-template")
    repo, life = root / "triton", root / "life"
    reg = Registry(life)
    for v in ("1", "2", "3"):
        path = served_file(repo, v)
        path.parent.mkdir(parents=True)
        path.write_bytes(f"onnx bytes of version {v}".encode())
        reg.log_version(MODEL, v, params={}, metrics={}, lineage={"onnx_sha256": sha256_file(path)})
    (repo / MODEL / "config.pbtxt").write_text(f'name: "{MODEL}"\nplatform: "onnxruntime_onnx"\n')
    reg.set_alias(MODEL, CHAMPION, "1")
    return root


@pytest.fixture
def lifecycle(lifecycle_template, tmp_path) -> Any:
    import shutil

    repo, life = tmp_path / "triton", tmp_path / "life"
    shutil.copytree(lifecycle_template / "triton", repo)
    shutil.copytree(lifecycle_template / "life", life)
    return type("Lifecycle", (), {"repo": repo, "life": life, "reg": Registry(life), "tmp": tmp_path})()


def record(lc, data, version: str = "2", **kwargs: Any):
    data_dir, hand = data
    clock = FakeClock()
    clf = StubClassifier(truth_table(), {"1": CHAMPION_WRONG, version: CHAMPION_WRONG}, lambda v, n: 10.0, clock)
    kwargs.setdefault("answer_fn", same_answers)
    return gate_and_record("stub", version, registry=lc.reg, data_dir=data_dir, repo=lc.repo, requests=50,
                           seconds=0.5, concurrency=1, classifier=clf, clock=clock, handwritten=hand, **kwargs)


def swap(lc, version: str) -> None:
    served_file(lc.repo, version).write_bytes(b"another graph, same version number")


def test_the_gate_records_the_hash_of_the_file_it_judged(lifecycle, data):
    report = record(lifecycle, data)
    assert report.passed
    digest = sha256_file(served_file(lifecycle.repo, "2"))
    info = lifecycle.reg.version(MODEL, "2")
    assert info.tags["gate.sha256"] == digest == report.figures["sha256"] and info.gate_passed
    local = lifecycle.reg.client.download_artifacts(info.tags["gate.run_id"], "gate.json", str(lifecycle.tmp))
    gate_json = json.loads(Path(local).read_text())
    assert gate_json["sha256"] == digest
    with pytest.raises(ValueError, match="64-hex digest"):  # never a tag copied in: a digest of a file, or nothing
        lifecycle.reg.record_gate(MODEL, "3", passed=True, checks=[], baseline="1", sha256="")


def test_the_gate_refuses_a_file_that_is_not_there(lifecycle, data):
    served_file(lifecycle.repo, "2").unlink()
    with pytest.raises(GateRequired, match="not on this disk"):
        record(lifecycle, data)
    assert "gate.passed" not in lifecycle.reg.version(MODEL, "2").tags


def test_the_gate_refuses_a_file_that_is_not_the_registered_one(lifecycle, data):
    swap(lifecycle, "2")
    with pytest.raises(GateRequired, match="not the file registered"):
        record(lifecycle, data)
    assert "gate.passed" not in lifecycle.reg.version(MODEL, "2").tags


def test_the_gate_refuses_a_file_that_changed_while_it_was_judged(lifecycle, data):
    def swapped_meanwhile(challenger: str, champion: str) -> dict[str, Any]:
        swap(lifecycle, challenger)
        return same_answers(challenger, champion)

    with pytest.raises(GateRequired, match="changed while it was judged"):
        record(lifecycle, data, answer_fn=swapped_meanwhile)
    assert "gate.passed" not in lifecycle.reg.version(MODEL, "2").tags


# ------------------------------------------------------------------------------------------ promote / rollout refuse
def cli(lc, *argv: str) -> int:
    from model_repository.lifecycle.cli import main

    return main([*argv, "--lifecycle-dir", str(lc.life), "--repository", str(lc.repo),
                 "--rollout-file", str(lc.tmp / "rollout.yaml")])


def test_promote_refuses_a_served_file_swapped_after_its_gate(lifecycle, data, capsys):
    record(lifecycle, data)
    swap(lifecycle, "2")
    assert cli(lifecycle, "promote", "2") == 2
    assert "not the file its gate judged" in capsys.readouterr().err
    assert lifecycle.reg.alias(MODEL, CHAMPION) == "1" and not (lifecycle.tmp / "rollout.yaml").exists()


def test_promote_refuses_a_version_whose_served_file_is_missing(lifecycle, data, capsys):
    record(lifecycle, data)
    served_file(lifecycle.repo, "2").unlink()
    assert cli(lifecycle, "promote", "2") == 2
    assert "is missing" in capsys.readouterr().err and lifecycle.reg.alias(MODEL, CHAMPION) == "1"


def test_promote_accepts_the_file_that_was_gated(lifecycle, data, capsys):
    record(lifecycle, data)
    assert cli(lifecycle, "promote", "2") == 0, capsys.readouterr().err
    assert lifecycle.reg.alias(MODEL, CHAMPION) == "2"
    assert json.loads((lifecycle.tmp / "rollout.yaml").read_text())["stable"] == "2"


def test_promote_records_who_approved_it_and_why_on_the_model_card(lifecycle, data, capsys):
    record(lifecycle, data)
    assert cli(lifecycle, "promote", "2", "--approved-by", "dana@store", "--reason", "gate run 7, canary 10% clean") == 0
    info = lifecycle.reg.version(MODEL, "2")
    assert (info.tags["approval.by"], info.tags["approval.reason"]) == ("dana@store", "gate run 7, canary 10% clean")
    capsys.readouterr()
    assert cli(lifecycle, "card", "--version", "2") == 0
    text = capsys.readouterr().out
    assert "approved by **dana@store** (gate run 7, canary 10% clean); it replaced version 1" in text
    assert "**PASS** against version 1" in text


def test_rollout_refuses_a_canary_whose_file_was_swapped_after_its_gate(lifecycle, data, capsys):
    record(lifecycle, data)
    assert cli(lifecycle, "rollout", "--stable", "1", "--canary", "2:10") == 0  # the gated file: accepted
    (lifecycle.tmp / "rollout.yaml").unlink()
    swap(lifecycle, "2")
    assert cli(lifecycle, "rollout", "--stable", "1", "--canary", "2:10") == 2
    assert "not the file its gate judged" in capsys.readouterr().err and not (lifecycle.tmp / "rollout.yaml").exists()


def test_rollout_refuses_a_stable_whose_file_was_swapped(lifecycle, capsys):
    swap(lifecycle, "1")  # the champion: no gate record, held to the file registered
    assert cli(lifecycle, "rollout", "--stable", "1") == 2
    assert "not the file registered" in capsys.readouterr().err and not (lifecycle.tmp / "rollout.yaml").exists()


def test_rollout_refuses_an_ungated_canary_even_with_its_registered_file(lifecycle, capsys):
    assert cli(lifecycle, "rollout", "--stable", "1", "--canary", "3:10") == 2
    assert "has no gate record" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ the service refuses
def service_controller(lc, repository: Path | None = None) -> Any:
    from prometheus_client import CollectorRegistry

    from server.rollout.controller import RolloutController
    from server.rollout.feedback import FeedbackStore
    from server.rollout.wiring import RegistryGate
    from server.settings import Settings

    settings = Settings().replace(rollout={"file": str(lc.tmp / "rollout.yaml"), "lifecycle_dir": str(lc.life)}).rollout

    async def ready(model: str, version: str) -> bool:
        return True

    gate_check = RegistryGate(str(lc.life), repository or lc.repo)
    return RolloutController(settings, backend=None, feedback=FeedbackStore(), version_ready=ready,
                             gate_check=gate_check, registry=CollectorRegistry())


def write_rollout(lc, data: dict) -> None:
    import os

    path = lc.tmp / "rollout.yaml"
    path.write_text(json.dumps(data))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a new mtime even within one tick


async def test_the_service_refuses_a_swapped_canary_file_and_keeps_serving_the_old_config(lifecycle, data, caplog):
    record(lifecycle, data)
    c = service_controller(lifecycle)
    write_rollout(lifecycle, {"stable": "1", "canary": {"version": "2", "percent": 10}})
    assert await c.reload_if_changed()
    running = c.config
    swap(lifecycle, "2")
    write_rollout(lifecycle, {"stable": "1", "canary": {"version": "2", "percent": 20}})
    with caplog.at_level(logging.ERROR):
        assert not await c.reload_if_changed()
    assert c.config == running and "not the file its gate judged" in c.last_error
    assert "not the file its gate judged" in caplog.text
    assert c.m_changes.labels("refused")._value.get() == 1


async def test_the_service_refuses_a_swapped_stable_file_at_start(lifecycle, caplog):
    swap(lifecycle, "1")
    c = service_controller(lifecycle)
    write_rollout(lifecycle, {"stable": "1"})
    with caplog.at_level(logging.ERROR):
        assert not await c.reload_if_changed()
    assert c.config is None and "not the file registered" in c.last_error  # no pin: the ensemble's champion answers


async def test_the_service_refuses_a_version_whose_served_file_is_missing(lifecycle, data):
    record(lifecycle, data)
    served_file(lifecycle.repo, "2").unlink()
    c = service_controller(lifecycle)
    write_rollout(lifecycle, {"stable": "1", "canary": {"version": "2", "percent": 10}})
    assert not await c.reload_if_changed()
    assert c.config is None and "is missing" in c.last_error


@pytest.mark.parametrize("where", ["no repository here", "another repository here"])
async def test_a_service_without_the_served_files_on_its_disk_checks_the_gate_record(lifecycle, data, tmp_path, where,
                                                                                     caplog):
    record(lifecycle, data)
    elsewhere = tmp_path / "not-here"  # Triton's repository lives in another pod ...
    if where == "another repository here":  # ... or this disk's holds the build's version 1 only
        served_file(elsewhere, "1").parent.mkdir(parents=True)
        served_file(elsewhere, "1").write_bytes(served_file(lifecycle.repo, "1").read_bytes())
    c = service_controller(lifecycle, repository=elsewhere)
    write_rollout(lifecycle, {"stable": "1", "canary": {"version": "3", "percent": 10}})
    assert not await c.reload_if_changed() and "has no gate record" in c.last_error
    write_rollout(lifecycle, {"stable": "1", "canary": {"version": "2", "percent": 10}})
    with caplog.at_level(logging.WARNING):
        assert await c.reload_if_changed() and c.config.canary.version == "2"
    assert "checked against its gate record only" in caplog.text
