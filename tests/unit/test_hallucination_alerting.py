"""The hallucination-alerting evaluation (issue 22.6, ``benchmarks/hallucination/alerting.py``): its held-out split
is frozen, and its labelling judge (the row-tied fact checker) can fail an answer.

The data and the golden set are generated in-process with the build's seed (about 2 s), as in
``test_fact_mutations.py``; no model is loaded.
"""

from __future__ import annotations

import pytest

from benchmarks.hallucination import alerting as A
from model_repository.lifecycle.evaluation import mutations
from model_repository.lifecycle.evaluation.facts import StoreFacts
from model_repository.datagen import generate_all
from model_repository.golden import generate_golden

pytestmark = pytest.mark.L0

SEED = 1234


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[StoreFacts, list[dict]]:
    data = tmp_path_factory.mktemp("data")
    generate_all(data, seed=SEED)
    return StoreFacts.load(data), generate_golden(data, seed=SEED)


def test_the_heldout_ids_are_frozen(store):
    _, golden = store
    held = A.heldout_ids(r["id"] for r in golden)
    assert 0.2 < len(held) / len(golden) < 0.4, f"{len(held)} of {len(golden)} held out"
    assert A.ids_sha256(held) == A.HELDOUT_SHA256, (
        "the evaluation's held-out record ids changed (golden set, salt or share): thresholds tuned on the old "
        "development split would now be judged on records they saw")


def test_the_split_is_a_pure_function_of_the_id():
    assert A.is_heldout("gen-product_question-0001") == A.is_heldout("gen-product_question-0001")
    ids = [f"rec-{i}" for i in range(2000)]
    share = sum(map(A.is_heldout, ids)) / len(ids)
    assert abs(share - A.HELDOUT_SHARE) < 0.04


def test_the_judge_flags_mutated_answers_and_passes_their_references(store):
    facts, golden = store
    sample = golden[:120]
    by_id = {r["id"]: r for r in sample}
    mutants = mutations.mutate(facts, sample, seed=mutations.DEFAULT_SEED)
    assert len({m.kind for m in mutants}) >= 5
    labels = [A.label_synthetic(m.kind, A.violations(facts, by_id[m.record_id], m.answer))[0] for m in mutants]
    assert labels.count(1) / len(labels) >= 0.95, "the labelling judge no longer flags mutated answers"
    assert set(labels) <= {1, None}  # a mutant is never labelled grounded
    refs = [A.label_synthetic("reference", A.violations(facts, r, r["reference"]))[0] for r in sample]
    assert refs.count(0) == len(refs)


def test_a_neighbouring_volumes_price_is_labelled_fabricated(store):
    facts, golden = store
    m = next(m for m in mutations.mutate(facts, golden, seed=mutations.DEFAULT_SEED) if m.kind == "neighbour_price")
    rec = next(r for r in golden if r["id"] == m.record_id)
    found = A.violations(facts, rec, m.answer)
    assert found, m
    assert A.label_synthetic(m.kind, found)[0] == 1
    # a real small-tier answer the checker flags is fabricated; a flagged template answer is left out, not grounded
    assert A.label_real("small", found, None, m.answer)[0] == 1
    assert A.label_real("template", found, None, m.answer)[0] is None
    assert A.label_real("template", [], None, rec["reference"])[0] == 0


def test_the_figures_can_miss_the_target():
    rows = [{"label": 1, "group": "mutant:x", "score": 0.9}, {"label": 1, "group": "mutant:x", "score": 0.1},
            {"label": 0, "group": "template", "score": 0.8}, {"label": 0, "group": "template", "score": 0.0}]
    f = A.figures(rows, "score", A.BLOCK)
    assert (f["tp"], f["fp"], f["fn"], f["tn"]) == (1, 1, 1, 1)
    assert f["precision"] == 0.5 and f["recall"] == 0.5 and f["template_flagged"] == 0.5
    assert not f["meets_target"]
    good = [{**r, "score": float(r["label"])} for r in rows]
    assert A.figures(good, "score", A.BLOCK)["meets_target"]
