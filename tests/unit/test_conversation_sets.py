"""The open-world conversation sets are frozen: written once (tests/fixtures/conversations_openworld/write_sets.py)
before the conversation-state follow-up stage they measure, their sha256 recorded in FROZEN.sha256. A changed file
is a changed set -- this test fails until the change is made on purpose (a new file, a new hash, its own figures)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.L0

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "conversations_openworld"
TEMPLATES = Path(__file__).resolve().parents[2] / "model_repository" / "golden" / "conversations.py"


def _frozen() -> dict[str, str]:
    lines = (HERE / "FROZEN.sha256").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def _load(name: str) -> list[dict]:
    return [json.loads(x) for x in (HERE / name).read_text(encoding="utf-8").splitlines() if x.strip()]


def _writer():
    spec = importlib.util.spec_from_file_location("conversations_openworld_write_sets", HERE / "write_sets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(_frozen()))
def test_each_set_is_byte_for_byte_the_frozen_one(name):
    assert hashlib.sha256((HERE / name).read_bytes()).hexdigest() == _frozen()[name], f"{name} changed"


def test_the_held_out_set_is_as_large_as_promised_and_covers_every_slot():
    held = _load("heldout_conversations.jsonl")
    assert len(held) >= 200 and all(2 <= len(r["turns"]) <= 4 for r in held)
    slots = Counter(r["expect"]["slot"] for r in held)
    assert {"attribute", "volume", "author", "order_id"} <= set(slots) and min(slots.values()) >= 30
    attributes = {r["expect"]["attribute"] for r in held if r["expect"]["slot"] == "attribute"}
    assert attributes == {"author", "publisher", "pages", "format", "language", "release_date", "rating"}
    # state held for two turns or more: the last turn's item was given two turns before it
    assert sum(1 for r in held if len(r["turns"]) >= 3) >= 80


def test_dev_and_held_out_phrasings_are_disjoint_and_none_is_a_template_phrasing():
    phrases = _writer().all_phrases()
    assert not phrases["dev"] & phrases["heldout"]
    template_source = TEMPLATES.read_text(encoding="utf-8")
    for p in phrases["heldout"] | phrases["dev"]:
        assert f'"{p}"' not in template_source, f"{p!r} is a conversation template phrasing"


def test_the_relation_classifiers_training_phrases_share_none_with_the_frozen_sets():
    from server.stages import relation_data

    phrases = _writer().all_phrases()
    training = {p.lower() for p in relation_data.phrases()}
    assert not training & {p.lower() for p in phrases["dev"] | phrases["heldout"]}
    texts, *_ = relation_data.examples()
    frozen_turns = {t.lower() for name in _frozen() for r in _load(name) for t in r["turns"]}
    assert not {t.lower() for t in texts} & frozen_turns, "a generated training message is a turn of a frozen set"


def _blind_writer():
    import sys

    sys.path.insert(0, str(HERE))  # write_blind imports its sibling write_sets
    spec = importlib.util.spec_from_file_location("conversations_openworld_write_blind", HERE / "write_blind.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_blind_set_shares_no_phrase_with_the_first_sets_the_templates_or_the_training_phrases():
    """The blind set (write_blind.py: written after the follow-up stage's tuning on the first held-out set ended,
    never tuned on) must be new phrasing: no phrase of the first sets, of the conversation templates or of the
    relation classifier's training phrases, and no turn equal to a generated training message."""
    from server.stages import relation_data

    blind = {p.lower() for p in _blind_writer().all_phrases()}
    first = _writer().all_phrases()
    assert not blind & {p.lower() for p in first["dev"] | first["heldout"]}
    assert not blind & {p.lower() for p in relation_data.phrases()}
    template_source = TEMPLATES.read_text(encoding="utf-8").lower()
    assert not [p for p in blind if f'"{p}"' in template_source]
    texts, *_ = relation_data.examples()
    turns = {t.lower() for r in _load("blind_conversations.jsonl") for t in r["turns"]}
    assert not {t.lower() for t in texts} & turns
    records = _load("blind_conversations.jsonl")
    assert len(records) >= 200 and sum(len(r["turns"]) >= 3 for r in records) >= 60


def test_the_fresh_set_shares_no_phrase_with_the_earlier_sets_the_templates_or_the_training_phrases():
    """write_fresh.py: written after the blind set's failures were read, left unmeasured for the next run."""
    import sys

    from server.stages import relation_data

    sys.path.insert(0, str(HERE))
    spec = importlib.util.spec_from_file_location("conversations_openworld_write_fresh", HERE / "write_fresh.py")
    fresh_writer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh_writer)
    fresh = {p.lower() for p in fresh_writer.all_phrases()}
    first = _writer().all_phrases()
    assert not fresh & {p.lower() for p in first["dev"] | first["heldout"]}
    assert not fresh & {p.lower() for p in _blind_writer().all_phrases()}
    assert not fresh & {p.lower() for p in relation_data.phrases()}
    template_source = TEMPLATES.read_text(encoding="utf-8").lower()
    assert not [p for p in fresh if f'"{p}"' in template_source]
    texts, *_ = relation_data.examples()
    records = _load("fresh_conversations.jsonl")
    assert not {t.lower() for t in texts} & {t.lower() for r in records for t in r["turns"]}
    assert len(records) >= 150 and {r["expect"]["slot"] for r in records} == {"attribute", "volume", "order_id"}


def test_the_second_fresh_set_shares_no_phrase_with_any_earlier_set_the_templates_or_the_training_phrases():
    """write_fresh2.py: written after the fresh set was measured and before the changes its failures led to."""
    import sys

    from server.stages import relation_data

    sys.path.insert(0, str(HERE))
    writers = {}
    for name in ("write_fresh", "write_fresh2"):
        spec = importlib.util.spec_from_file_location(f"conversations_openworld_{name}", HERE / f"{name}.py")
        writers[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(writers[name])
    fresh2 = {p.lower() for p in writers["write_fresh2"].all_phrases()}
    first = _writer().all_phrases()
    earlier = {p.lower() for p in (*first["dev"], *first["heldout"], *_blind_writer().all_phrases(),
                                   *writers["write_fresh"].all_phrases())}
    assert not fresh2 & earlier
    assert not fresh2 & {p.lower() for p in relation_data.phrases()}
    template_source = TEMPLATES.read_text(encoding="utf-8").lower()
    assert not [p for p in fresh2 if f'"{p}"' in template_source]
    texts, *_ = relation_data.examples()
    records = _load("fresh2_conversations.jsonl")
    assert not {t.lower() for t in texts} & {t.lower() for r in records for t in r["turns"]}
    assert len(records) >= 200 and {r["expect"]["slot"] for r in records} == {"attribute", "volume", "order_id", "author"}


def _set_writer(name: str):
    import sys

    sys.path.insert(0, str(HERE))  # the writers import their sibling write_sets
    spec = importlib.util.spec_from_file_location(f"conversations_openworld_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_third_fresh_set_shares_no_phrase_with_any_earlier_set_the_templates_or_the_training_phrases():
    """write_fresh3.py: written after the last change to the follow-up stage, left unmeasured (the second fresh set's
    summaries had been read between tuning rounds)."""
    from server.stages import relation_data

    fresh3 = {p.lower() for p in _set_writer("write_fresh3").all_phrases()}
    first = _writer().all_phrases()
    earlier = {p.lower() for p in (*first["dev"], *first["heldout"], *_blind_writer().all_phrases(),
                                   *_set_writer("write_fresh").all_phrases(), *_set_writer("write_fresh2").all_phrases())}
    assert not fresh3 & earlier
    assert not fresh3 & {p.lower() for p in relation_data.phrases()}
    template_source = TEMPLATES.read_text(encoding="utf-8").lower()
    assert not [p for p in fresh3 if f'"{p}"' in template_source]
    texts, *_ = relation_data.examples()
    records = _load("fresh3_conversations.jsonl")
    assert not {t.lower() for t in texts} & {t.lower() for r in records for t in r["turns"]}
    assert len(records) >= 200 and {r["expect"]["slot"] for r in records} == {"attribute", "volume", "order_id", "author"}
