"""The open-world evaluation sets are frozen: written once (tests/fixtures/openworld/write_sets.py) before the
title resolver they measure, their sha256 recorded in FROZEN.sha256. A changed file is a changed set -- this test
fails until the change is made on purpose (a new file, a new hash, its own before/after figures)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from model_repository.datagen.real_series import CARRIED, NOT_CARRIED

pytestmark = pytest.mark.L0

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "openworld"


def _frozen() -> dict[str, str]:
    lines = (HERE / "FROZEN.sha256").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


@pytest.mark.parametrize("name", sorted(_frozen()))
def test_each_set_is_byte_for_byte_the_frozen_one(name):
    assert hashlib.sha256((HERE / name).read_bytes()).hexdigest() == _frozen()[name], f"{name} changed"


def test_the_held_out_sets_are_as_large_as_promised_and_name_no_listed_series():
    invented = [json.loads(x) for x in (HERE / "heldout_invented_titles.jsonl").read_text().splitlines()]
    unlisted = [json.loads(x) for x in (HERE / "heldout_unlisted_series.jsonl").read_text().splitlines()]
    assert len(invented) >= 300 and len(unlisted) >= 100
    assert sum(1 for r in invented if r["shares_word"]) >= 30  # titles sharing a word with a carried series
    listed = {s.name.lower() for s in (*CARRIED, *NOT_CARRIED)} | {a.lower() for s in (*CARRIED, *NOT_CARRIED) for a in s.aliases}
    assert not [r["title"] for r in (*invented, *unlisted) if r["title"].lower() in listed]
    dev = {json.loads(x)["title"] for f in ("dev_invented_titles.jsonl", "dev_unlisted_series.jsonl")
           for x in (HERE / f).read_text().splitlines()}
    assert not dev & {r["title"] for r in (*invented, *unlisted)}, "a title is in both the dev and held-out sets"


def test_the_blind_sets_are_as_large_as_promised_and_new():
    """write_blind.py: written after the resolver's tuning on the first held-out sets, never tuned on -- no title of
    a store list and none of the first sets'."""
    invented = [json.loads(x) for x in (HERE / "blind_invented_titles.jsonl").read_text().splitlines()]
    unlisted = [json.loads(x) for x in (HERE / "blind_unlisted_series.jsonl").read_text().splitlines()]
    assert len(invented) >= 300 and len(unlisted) >= 100
    assert sum(1 for r in invented if r["shares_word"]) >= 100
    listed = {s.name.lower() for s in (*CARRIED, *NOT_CARRIED)} | {a.lower() for s in (*CARRIED, *NOT_CARRIED) for a in s.aliases}
    assert not [r["title"] for r in (*invented, *unlisted) if r["title"].lower() in listed]
    first = {json.loads(x)["title"].lower() for f in HERE.glob("*.jsonl") if not f.name.startswith("blind_")
             for x in f.read_text().splitlines()}
    assert not first & {r["title"].lower() for r in (*invented, *unlisted)}


def test_the_fresh_invented_set_is_large_and_new():
    """write_fresh.py: written after the blind sets' failures were read, left unmeasured for the next run."""
    fresh = [json.loads(x) for x in (HERE / "fresh_invented_titles.jsonl").read_text().splitlines()]
    assert len(fresh) >= 300 and sum(1 for r in fresh if r["shares_word"]) >= 100
    listed = {s.name.lower() for s in (*CARRIED, *NOT_CARRIED)} | {a.lower() for s in (*CARRIED, *NOT_CARRIED) for a in s.aliases}
    assert not [r["title"] for r in fresh if r["title"].lower() in listed]
    earlier = {json.loads(x)["title"].lower() for f in HERE.glob("*.jsonl") if not f.name.startswith("fresh_")
               for x in f.read_text().splitlines()}
    assert not earlier & {r["title"].lower() for r in fresh}


def test_the_fresh_unlisted_set_is_large_real_and_new():
    """write_fresh_unlisted.py: real series in no store list (aliases included) and in no earlier set."""
    fresh = [json.loads(x) for x in (HERE / "fresh_unlisted_series.jsonl").read_text().splitlines()]
    assert len(fresh) >= 100 and all(r["kind"] == "unlisted" for r in fresh)
    listed = {s.name.lower() for s in (*CARRIED, *NOT_CARRIED)} | {a.lower() for s in (*CARRIED, *NOT_CARRIED) for a in s.aliases}
    assert not [r["title"] for r in fresh if r["title"].lower() in listed]
    earlier = {json.loads(x)["title"].lower() for f in HERE.glob("*.jsonl") if not f.name.startswith("fresh_")
               for x in f.read_text().splitlines()}
    assert not earlier & {r["title"].lower() for r in fresh}
