"""The open-world conversation evaluation (model_repository/lifecycle/evaluation/conversations_openworld.py): its judge, and the
frozen sets played offline (follow-up stage + facts stage + template composer over the generated catalog, seed
1234 -- the data the sets were written from). Red with the old phrase-rule follow-up stage (5% held-out)."""

from __future__ import annotations

import pytest

from benchmarks.sessions import followup_offline as offline
from model_repository.lifecycle.evaluation import conversations_openworld as ow

pytestmark = pytest.mark.L0


def test_judge_wants_the_item_and_the_value():
    rec = {"expect": {"slot": "attribute", "series": "Naruto", "volume": 3, "asin": "A1", "attribute": "pages",
                      "values": ["192"]}}
    assert ow.judge(rec, "Naruto, Vol. 3 (paperback) is $9.99. It runs 192 pages.")
    assert ow.judge(rec, "It runs 192 pages.", ["A1"])  # the card is the product
    assert not ow.judge(rec, "Naruto, Vol. 4 runs 192 pages.")  # another volume
    assert not ow.judge(rec, "Naruto, Vol. 3 (paperback) is $9.99.")  # the value not stated
    order = {"expect": {"slot": "order_id", "order_id": "MA-12345678"}}
    assert ow.judge(order, "Your order MA-12345678 shipped.") and not ow.judge(order, "Which order do you mean?")
    author = {"expect": {"slot": "author", "author": "X", "series": "S", "other_series": ["T", "U"]}}
    assert ow.judge(author, "Other series by X we carry: U, Vol. 1") and not ow.judge(author, "S is by X.")


@pytest.mark.parametrize("name, floor", [(ow.DEV, 0.95), (ow.HELD_OUT, 0.93)])
def test_the_frozen_sets_played_offline_address_the_item_in_play(store, resolver, name, floor):
    rows = offline.play_offline(ow.load(name), resolver, orders=store.get_order)
    summary = ow.summarise(rows)
    assert summary["all"]["addressed"] >= floor, summary
    assert all(v["addressed"] >= 0.8 for v in summary["by_slot"].values()), summary["by_slot"]
