"""The open-world judge (model_repository/lifecycle/evaluation/openworld.py) fails an answer that prices or cards another product."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from model_repository.lifecycle.evaluation.openworld import judge, load, summarise

pytestmark = pytest.mark.L0

RECORD = {"id": "x", "kind": "invented", "family": "shared_word", "message": "how much is Vinland Rhapsody vol 3"}


@pytest.mark.parametrize("answer, cards, declined", [
    ("Sorry, we don't carry Vinland Rhapsody, so I can't check its stock or price. Did you mean Vinland Saga?", [], True),
    ("Did you mean Vinland Saga? Tell me the title and volume and I'll check its price and stock.", [], True),
    ("Vinland Saga, Vol. 3 (paperback, English) is $11.99 and in stock.", [], False),  # the look-alike priced
    ("We have it!", [SimpleNamespace(title="Vinland Saga, Vol. 3", price=11.99)], False),  # a card is a price
    ("Vinland Saga, Vol. 3 is currently out of stock.", [], False),  # a stock statement of another product
    ("ヴィンランド・サガ 3巻は1200円です", [], False),
    ("Vinland Saga is $11.99 and in stock.", [], False),  # a series of the store named: a product claim
    # a policy's own figures are no product claim
    ("Sorry, we don't carry it. Manga Club Premium costs $7.99 per month or $59.99 per year.", [], True),
])
def test_declined_means_no_price_no_stock_no_card(answer, cards, declined):
    assert judge(RECORD, answer, cards, ("vinland saga",)).declined is declined


def test_the_summary_counts_per_kind_and_family():
    rows = [judge(RECORD, "We don't carry it.", []), judge(RECORD, "Vol. 3 is $9.99.", [])]
    report = summarise(rows)
    assert report["declined"] == 0.5 and report["by_family"] == {"shared_word": 0.5}
    assert len(report["failures"]) == 1 and "$9" in report["failures"][0]["why"]


def test_the_frozen_sets_load():
    assert len(load("heldout_invented_titles.jsonl")) >= 300 and len(load("heldout_unlisted_series.jsonl")) >= 100
