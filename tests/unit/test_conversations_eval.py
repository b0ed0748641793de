"""The multi-turn conversation set (model_repository/golden/conversations.py) and its judge
(model_repository/lifecycle/evaluation/conversations.py)."""

from __future__ import annotations

import collections
from types import SimpleNamespace as NS

import pytest

from model_repository.lifecycle.evaluation.conversations import judge, summarise
from model_repository.golden.conversations import generate_conversations

pytestmark = pytest.mark.L0


def test_the_set_has_300_plus_conversations_over_every_template_with_held_out_phrasings(tmp_path_factory):
    from model_repository.datagen import generate_all

    d = tmp_path_factory.mktemp("conv_data")
    generate_all(d, seed=1234)
    rows = generate_conversations(d, seed=1234)
    assert len(rows) >= 300 and len({r["id"] for r in rows}) == len(rows)
    templates = collections.Counter(r["template"] for r in rows)
    assert len(templates) == 8 and min(templates.values()) >= 30
    assert {r["split"] for r in rows} == {"dev", "heldout"}
    assert all(2 <= len(r["turns"]) <= 3 and r["expect"]["intent"] for r in rows)
    assert generate_conversations(d, seed=1234) == rows  # deterministic


def _reply(answer, intent="price_deal", cards=()):
    return NS(answer=answer, intent=intent, cards=[NS(asin=a, title=t) for a, t in cards])


def test_judge_reads_the_last_turn_against_what_the_conversation_expects():
    conv = {"expect": {"intent": ["price_deal"], "series": "Naruto", "volume": 4, "asin": "B0NARUTO04"}}
    good = _reply("Naruto, Vol. 4 is $9.99.", cards=[("B0NARUTO04", "Naruto, Vol. 4")])
    assert judge(conv, [_reply("x"), good])["all"] is True
    wrong = _reply("Naruto, Vol. 3 is $9.99.", cards=[("B0NARUTO03", "Naruto, Vol. 3")])
    j = judge(conv, [_reply("x"), wrong])
    assert (j["carry_over"], j["card"], j["all"]) == (False, False, False)
    picks = {"expect": {"intent": ["product_question"], "card_from": [0, 1]}}
    first = _reply("picks", cards=[("B0A", "A"), ("B0B", "B")])
    assert judge(picks, [first, _reply("B is $5.", "product_question", [("B0B", "B")])])["card"] is True
    assert judge(picks, [first, RuntimeError("deadline")])["all"] is False
    s = summarise([{"split": "dev", "template": "t", "memory": {"intent": True, "carry_over": True, "card": None,
                    "must_state": None, "all": True}, "no_memory": {"intent": False, "carry_over": False, "card": None,
                    "must_state": None, "all": False}}])
    assert s["all"]["memory"]["all"] == 1.0 and s["all"]["no_memory"]["all"] == 0.0 and s["all"]["memory"]["card"] is None
