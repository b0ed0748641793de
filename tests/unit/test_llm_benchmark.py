"""The small tier's stop-at-end-event rule and the LLM benchmark's pure helpers (no model, no Triton)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.llm.generate import Trace, end_event_token, facts_stated, pick_records, stop_cut, timing_of
from model_repository.backends.llm_model import OnnxGenerator, answer_ended

pytestmark = pytest.mark.L0


@pytest.mark.parametrize(
    "text, ended",
    [
        ('{"type": "text", "text": "Hi"}\n{"type": "end"}', True),
        ('{"type": "text", "text": "Hi"}\n{"type": "end"}\n', True),
        ('{"type":"end"},\n  ', True),
        ("{\u201ctype\u201d: \u201cend\u201d}", True),
        ('{"type": "end"', False),  # not closed yet: the next token may still be "}"
        ('{"type": "text", "text": "{\\"type\\": \\"end\\"}"}', False),
        ('{"type": "end"}\n{"type": "text", "text": "more"}', False),  # only the last line counts
        ("", False),
        ("the end", False),
    ],
)
def test_answer_ended(text, ended):
    assert answer_ended(text) is ended


class _Scripted(OnnxGenerator):
    """OnnxGenerator's loop over scripted greedy tokens (no ONNX session)."""

    def __init__(self, script, stop_ids=(0,)):  # noqa: D107 - deliberately skips the session set-up
        self.script, self.stop_ids, self.i = list(script), set(stop_ids), 0

    def _next(self):
        logits = np.zeros(16, dtype=np.float32)
        logits[self.script[self.i]] = 1.0
        self.i += 1
        return logits

    def _prefill(self, ids):
        return self._next(), None, 0

    def _forward(self, ids, start, past):
        return self._next(), None


def test_generate_stop_when_ends_with_stop_after_the_matching_token():
    gen = _Scripted([3, 7, 4, 5, 6])
    seen = []
    out = list(gen.generate([1, 2], 10, stop_when=lambda ids: seen.append(list(ids)) or ids[-1] == 7))
    assert out == [(3, None), (7, None), (None, "stop")]
    assert seen == [[3], [3, 7]]
    # Without it the same script runs to max_new_tokens; a stop token still wins.
    assert list(_Scripted([3, 7, 4, 5]).generate([1], 3)) == [(3, None), (7, None), (4, None), (None, "length")]
    assert list(_Scripted([3, 0]).generate([1], 5, stop_when=lambda ids: False)) == [(3, None), (None, "stop")]


def test_pick_records_spreads_evenly_per_intent():
    records = [{"id": f"p{i}", "intent": "product_question"} for i in range(9)]
    records += [{"id": "c0", "intent": "chitchat"}]
    picked = pick_records(records, 3)
    assert [r["id"] for r in picked] == ["p0", "p3", "p6", "c0"]


def test_timing_of_splits_prefill_and_decode():
    trace = Trace(ids=[5, 6, 7, 8], times=[0.5, 0.6, 0.7, 0.8], finish="length", total_s=0.81)
    t = timing_of(trace)
    assert t["tokens"] == 4
    assert t["prefill_ms"] == pytest.approx(500)
    assert t["decode_ms_per_token"] == pytest.approx(100)
    assert t["e2e_ms"] == pytest.approx(810)
    cut = timing_of(trace, 2)  # a cut trace ends at its last kept token
    assert cut["e2e_ms"] == pytest.approx(600) and cut["tokens_per_s"] == pytest.approx(2 / 0.6)
    empty = timing_of(Trace([], [], "stop", 0.2))
    assert empty["tokens"] == 0 and math.isnan(empty["decode_ms_per_token"])


def test_end_event_token_and_stop_cut():
    pieces = ['{"type": "text", "text": "Hi"}', "\n", '{"type": "end"', "}", "\n", "chatter"]
    decode = lambda ids: "".join(pieces[i] for i in ids)  # noqa: E731
    ids = list(range(len(pieces)))
    assert end_event_token(decode, ids) == 4
    assert end_event_token(decode, ids[:3]) is None
    assert stop_cut({"end_event_token": 4, "tokens": 6}) == 4
    assert stop_cut({"end_event_token": None, "tokens": 6}) == 6


def test_facts_stated_counts_groups_with_any_phrasing():
    record = {"must_state": [["Dandadan, Vol. 4", "Dandadan volume 4"], ["in stock"], ["$9.99"]]}
    assert facts_stated(record, "dandadan volume 4 is IN STOCK.") == (2, 3)
    assert facts_stated({"must_state": []}, "anything") == (0, 0)
