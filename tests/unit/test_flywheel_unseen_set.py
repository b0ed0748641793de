"""The flywheel's unseen-template set stays what it was when it was written (issue 22.8).

tests/fixtures/flywheel_unseen/unseen.jsonl: 152 customer messages written by hand, before any model was scored on
them, in sentence frames the flywheel never trains on -- neither the intent generator's templates
(model_repository/datagen/intents.py, Japanese ones included) nor the flywheel's slang traffic
(benchmarks/drift/simulate.py ``SLANG``). Kinds: ``flywheel_slang`` (the flywheel's new words -- bussin, no cap, yeet,
mid, cop, bread -- in new sentences), ``other_slang``, ``typo``, ``fragment``, ``japanese`` (kana/kanji), ``romaji``.
Labels follow the labelling rules in datagen/intents.py's docstring. Frozen by sha256: a changed file is a changed
set, and this test fails until that is done on purpose (a new set, a new hash, its own figures). Never tuned on.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.drift.simulate import SLANG
from model_repository.datagen.intents import GREETINGS, RAMBLE, SLANG_PREFIX, SLANG_SUFFIX, TEMPLATES, THANKS, _normalise
from model_repository.lifecycle.generalisation import TARGET_INTENTS, UNSEEN_SET, load_unseen
from server.intents import INTENT_LABELS

pytestmark = pytest.mark.L0

HERE = UNSEEN_SET.parent
KINDS = {"flywheel_slang", "other_slang", "typo", "fragment", "japanese", "romaji"}


def _frozen() -> dict[str, str]:
    lines = (HERE / "FROZEN.sha256").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def test_the_set_is_byte_for_byte_the_frozen_one():
    assert set(_frozen()) == {UNSEEN_SET.name}
    assert hashlib.sha256(UNSEEN_SET.read_bytes()).hexdigest() == _frozen()[UNSEEN_SET.name], (
        "unseen.jsonl changed: the unseen-template set is frozen (write a new set with its own hash and figures)")


def test_the_set_is_as_large_as_promised_and_covers_every_intent_and_kind():
    rows = load_unseen()
    assert 100 <= len(rows) <= 200
    assert len({r["id"] for r in rows}) == len(rows) and len({_normalise(r["text"]) for r in rows}) == len(rows)
    labels = Counter(r["label"] for r in rows)
    assert set(labels) == set(INTENT_LABELS)
    assert all(labels[t] >= 25 for t in TARGET_INTENTS), labels  # the slice the flywheel's slang targets
    assert {r["kind"] for r in rows} == KINDS and min(Counter(r["kind"] for r in rows).values()) >= 15


def _alternatives(values) -> str:
    return "(?:" + "|".join(re.escape(_normalise(v)) for v in sorted(values, key=len, reverse=True)) + ")"


def _slots() -> dict[str, str]:
    """Each slot as the generator fills it: a vocabulary where it draws from one, numbers, else a few words (a series
    name: up to 8 words; a title: a series name with a volume, in _Slots.title's forms)."""
    from model_repository.datagen import intents as gen

    words = lambda n: rf"(?:\S+ ){{0,{n - 1}}}\S+"  # noqa: E731
    vocab = {"genre": gen._GENRES, "fmt": gen._FORMATS, "lang": gen._LANGS, "rel": gen._RELS, "topic": gen._TOPICS,
             "competitor": gen._COMPETITORS, "holiday": gen._HOLIDAYS, "country": gen._COUNTRIES, "city": gen._CITIES,
             "month": gen._MONTHS, "weekday": gen._WEEKDAYS, "code": gen._CODES, "attr": gen._ATTRIBUTES,
             "fmtpair": gen._FORMAT_PAIRS, "carrier": ("ups", "usps", "fedex"), "genre_ja": gen._GENRES_JA,
             "rel_ja": gen._RELS_JA, "country_ja": gen._COUNTRIES_JA}
    out = {k: _alternatives(v) for k, v in vocab.items()}
    out.update({k: r"\d+" for k in ("vol", "vol2", "n", "n2", "days", "day", "age", "pct", "chap")})
    out.update({"price": r"\d+(?: \d+)?", "order_id": words(3), "author": words(4), "char": words(3), "arc": words(4),
                "series": words(8), "s": words(8), "series2": words(8), "series_ja": words(8)})
    series = words(8)
    out["title"] = rf"(?:{series} (?:(?:vol|volume) \d+|v\d+|\d+)|vol \d+ of {series})"  # _Slots.title's forms
    return out


def _frame(template: str, slots: dict[str, str]) -> re.Pattern[str]:
    """A template as the generator can decorate it (greeting/slang prefix, thanks/slang suffix), its slots filled
    as the generator fills them, compared on the normalised text (case, punctuation and spacing dropped)."""
    pieces = re.split(r"\{(\w+)\}", template)  # literal, slot, literal, ...
    body = " ".join(filter(None, (slots[p] if i % 2 else re.escape(_normalise(p)) for i, p in enumerate(pieces))))
    decorations = [_normalise(d) for d in (*GREETINGS, *SLANG_PREFIX, *RAMBLE, *THANKS, *SLANG_SUFFIX) if _normalise(d)]
    deco = _alternatives(set(decorations))
    return re.compile(rf"^(?:{deco} )*{body}(?: {deco})*$")


def _has_words(template: str) -> bool:
    """A frame has words of its own ("{title}: {attr}?" is slots only: it frames anything, so it frames nothing);
    a template without slots ("hi", "lol") is compared whole."""
    return "{" not in template or len(_normalise(re.sub(r"\{\w+\}", " ", template)).replace(" ", "")) >= 4


def test_no_message_is_written_in_a_frame_the_flywheel_trains_on():
    templates = [t for ts in TEMPLATES.values() for t in ts] + [t for t, _ in SLANG]
    slots = _slots()
    frames = [(t, _frame(t, slots)) for t in templates if _has_words(t)]
    assert len(frames) >= len(templates) - 10
    clashes = [(r["text"], t) for r in load_unseen() for t, rx in frames if rx.match(_normalise(r["text"]))]
    assert not clashes, f"messages in a template's frame (not unseen): {clashes[:5]}"
