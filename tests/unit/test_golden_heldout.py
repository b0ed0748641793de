"""The held-out golden set stays held out (issue 22.4): hand-written in tests/fixtures/golden_heldout/
(``heldout_source.jsonl``, entities by reference) before any service answered it, resolved against the seed-1234 store
data (``heldout.jsonl``) and frozen by sha256. A changed file is a changed set: this test fails until the change is
made on purpose (a new set, a new hash, its own figures). It is reported separately and never used to tune; the
development split (.build/golden/golden.jsonl and the former .build/golden/holdout.jsonl) is where tuning happens."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest
from mangaassist.v1 import mangaassist_pb2 as pb

from model_repository.lifecycle.evaluation import dimensions
from model_repository.lifecycle.evaluation.facts import StoreFacts, check_answer, expected_entity
from model_repository.datagen import generate_all

pytestmark = pytest.mark.L0

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "golden_heldout"


def _frozen() -> dict[str, str]:
    lines = (HERE / "FROZEN.sha256").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def _resolver():
    spec = importlib.util.spec_from_file_location("golden_heldout_resolve", HERE / "resolve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data")
    generate_all(path, seed=_resolver().SEED)
    return path


def test_both_files_are_frozen():
    assert set(_frozen()) == {"heldout_source.jsonl", "heldout.jsonl"}


@pytest.mark.parametrize("name", sorted(_frozen()))
def test_each_file_is_byte_for_byte_the_frozen_one(name):
    assert hashlib.sha256((HERE / name).read_bytes()).hexdigest() == _frozen()[name], (
        f"{name} changed: the held-out set is frozen (write a new set with its own hash and figures instead)")


def test_the_set_is_as_large_as_promised_and_covers_every_intent():
    records = dimensions.load_golden(HERE / "heldout.jsonl")
    assert len(records) >= 60 and len({r.id for r in records}) == len(records)
    assert all(r.source == "heldout" and r.id.startswith("hx-") for r in records)
    intents = Counter(r.intent for r in records)
    assert set(intents) == set(dimensions.INTENTS) and min(intents.values()) >= 3
    # the entities relevance compares: editions other than English print, orders, policy sections
    entities = [r.entity for r in records]
    assert sum(bool(e["asin"]) for e in entities) >= 20 and sum(bool(e["order_id"]) for e in entities) >= 8
    assert sum(bool(e["policy_id"]) for e in entities) >= 20


def test_the_committed_facts_are_the_seed_1234_data(data):
    """heldout.jsonl is exactly the source resolved against freshly generated data: its facts are the store's."""
    resolved = _resolver().render(_resolver().resolve(data))
    assert resolved == (HERE / "heldout.jsonl").read_text(encoding="utf-8")


def test_every_reference_passes_every_judge(data):
    facts = StoreFacts.load(data)
    for r in dimensions.load_golden(HERE / "heldout.jsonl"):
        if r.expect.blocked:
            continue
        response = pb.ChatResponse(answer=r.reference, intent=r.intent, tier="template")
        report = check_answer(facts, r.message, response, expected_entity(facts, r.entity, r.reference))
        assert report.ok, (r.id, [v.to_dict() for v in report.violations])
        ok, _, failed = dimensions.relevance(r, response, facts)
        assert ok, (r.id, failed)
        coverage, missing, present = dimensions.completeness(r, r.reference)
        assert not missing and not present, (r.id, missing, present)
