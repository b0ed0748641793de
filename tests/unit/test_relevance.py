"""Relevance measures the answer (issue 22.3): the product / edition / order / policy section an answer resolves to is
compared with the record's, and intent agreement is its own column. Each wrong-entity answer here must FAIL: another
volume, another edition of the same volume, another order, another policy section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mangaassist.v1 import mangaassist_pb2 as pb

from model_repository.lifecycle.evaluation import dimensions
from model_repository.lifecycle.evaluation.dimensions import GoldenRecord, Outcome
from model_repository.lifecycle.evaluation.facts import StoreFacts

pytestmark = pytest.mark.L0


def _product(asin: str, title: str, volume: int, fmt: str = "tankobon", price: float = 9.99, **kw) -> dict:
    return {"asin": asin, "title": title, "series": kw.get("series", "Ramen Samurai Academy"), "volume": volume,
            "author": "Aoi Tanaka", "publisher": "Starfall Manga", "format": fmt, "language": "English",
            "age_rating": "Teen", "genres": kw.get("genres", ["comedy"]), "price": price, "stock": 5,
            "release_date": "2021-03-05", "description": "", "review_summary": ""}


PRODUCTS = [
    _product("B0RAMEN001", "Ramen Samurai Academy, Vol. 1", 1),
    _product("B0RAMEND01", "Ramen Samurai Academy, Vol. 1 (Digital Edition)", 1, "digital", 6.99),
    _product("B0RAMEN002", "Ramen Samurai Academy, Vol. 2", 2, price=10.99),
    _product("B0MOONLIT1", "Moonlit Archive, Vol. 1", 1, series="Moonlit Archive", genres=["fantasy"]),
]
POLICIES = [
    {"policy_id": "returns-window", "text": "You can return most physical items within 30 days of delivery for a full "
     "refund. Books must be unread and in their original condition."},
    {"policy_id": "returns-damaged", "text": "If an item arrives damaged, misprinted or missing pages, report it within "
     "14 days of delivery with a photo and we send a free replacement with a prepaid return label."},
    {"policy_id": "shipping-expedited", "text": "Expedited shipping costs $9.99 and arrives in 2-3 business days. "
     "Overnight shipping costs $19.99 and arrives the next business day."},
]
ORDERS = [
    {"order_id": "MA-20481937", "status": "shipped", "carrier": "UPS", "tracking_number": "1Z999AA10123456784",
     "items": ["B0RAMEN001"], "placed_at": "2024-05-01", "eta": "2024-05-06"},
    {"order_id": "MA-11112222", "status": "delivered", "carrier": "USPS", "tracking_number": "9400",
     "items": ["B0MOONLIT1"], "placed_at": "2024-04-01", "eta": "2024-04-04"},
]
SERIES = [
    {"series": "Ramen Samurai Academy", "carried": True, "aliases": []},
    {"series": "Moonlit Archive", "carried": True, "aliases": []},
]


@pytest.fixture
def facts(tmp_path: Path) -> StoreFacts:
    for name, rows in (("catalog", PRODUCTS), ("policies", POLICIES), ("orders", ORDERS), ("series", SERIES)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return StoreFacts.load(tmp_path)


def reply(answer: str, *cards: str, intent: str = "product_question") -> pb.ChatResponse:
    rows = {p["asin"]: p for p in PRODUCTS}
    return pb.ChatResponse(answer=answer, intent=intent, tier="template", cards=[
        pb.ProductCard(asin=a, title=rows[a]["title"], price=rows[a]["price"], currency="USD", in_stock=True) for a in cards])


def rec(reference: str, intent: str = "product_question", **entity) -> GoldenRecord:
    return GoldenRecord.from_dict({"id": "r", "message": "msg", "intent": intent, "entity": entity, "reference": reference})


def relevant(record: GoldenRecord, response: pb.ChatResponse, facts: StoreFacts) -> tuple[bool, list[str]]:
    ok, _, failed = dimensions.relevance(record, response, facts)
    return ok, failed


def test_another_volume_of_the_series_asked_is_not_relevant(facts):
    r = rec("Ramen Samurai Academy, Vol. 1 is in stock.", series="Ramen Samurai Academy", asin="B0RAMEN001")
    assert relevant(r, reply("Ramen Samurai Academy, Vol. 1 is in stock at $9.99."), facts) == (True, [])
    assert relevant(r, reply("Here it is.", "B0RAMEN001"), facts)[0]  # its card resolves it
    ok, failed = relevant(r, reply("Ramen Samurai Academy, Vol. 2 is in stock at $10.99."), facts)
    assert not ok and failed == ["answers about Ramen Samurai Academy, Vol. 2, not Ramen Samurai Academy, Vol. 1 (asked)"]
    ok, failed = relevant(r, reply("Ramen Samurai Academy is a fun read."), facts)  # the series, no edition
    assert not ok and failed[0].startswith("names no edition of Ramen Samurai Academy")


def test_another_edition_of_the_same_volume_is_not_relevant(facts):
    r = rec("Ramen Samurai Academy, Vol. 1 (Digital Edition) is available.", series="Ramen Samurai Academy",
            asin="B0RAMEND01")
    assert relevant(r, reply("Ramen Samurai Academy, Vol. 1 (Digital Edition) is $6.99 and available."), facts)[0]
    ok, failed = relevant(r, reply("Ramen Samurai Academy, Vol. 1 is $9.99 and in stock."), facts)  # the print one
    assert not ok and "not Ramen Samurai Academy, Vol. 1 (Digital Edition) (asked)" in failed[0]
    ok, _ = relevant(r, reply("That one is in stock.", "B0RAMEN001"), facts)  # a card of the print edition
    assert not ok
    # naming the asked edition beside another is still about it
    both = "Ramen Samurai Academy, Vol. 1 is $9.99; Ramen Samurai Academy, Vol. 1 (Digital Edition) is $6.99."
    assert relevant(r, reply(both), facts)[0]


def test_another_series_is_not_relevant(facts):
    r = rec("Ramen Samurai Academy is by Aoi Tanaka.", series="Ramen Samurai Academy")
    assert relevant(r, reply("Ramen Samurai Academy is by Aoi Tanaka."), facts)[0]
    ok, failed = relevant(r, reply("Moonlit Archive is by Aoi Tanaka."), facts)
    assert not ok and failed == ["answers about moonlit archive, not Ramen Samurai Academy (asked)"]


def test_another_order_is_not_relevant(facts):
    r = rec("Order MA-20481937 has shipped with UPS.", "order_status", order_id="MA-20481937")
    assert relevant(r, reply("Order MA-20481937 has shipped with UPS.", intent="order_status"), facts)[0]
    ok, failed = relevant(r, reply("Order MA-11112222 was delivered by USPS.", intent="order_status"), facts)
    assert not ok and failed == ["answers about order MA-11112222, not MA-20481937 (asked)"]
    ok, failed = relevant(r, reply("I couldn't find that order.", intent="order_status"), facts)
    assert not ok and failed == ["does not mention order MA-20481937"]
    # a record whose right answer is not to look the order up (someone else's) does not ask for its id
    other = rec("I can only share order details with the customer who placed the order.", "order_status",
                order_id="MA-11112222")
    assert relevant(other, reply("I can only share order details with the customer who placed it.",
                                 intent="order_status"), facts)[0]


def test_another_policy_section_is_not_relevant(facts):
    r = rec("You can return most physical items within 30 days of delivery for a full refund.", "return_refund",
            policy_id="returns-window")
    good = "Unread physical items can be returned within 30 days of delivery for a full refund."
    assert relevant(r, reply(good, intent="return_refund"), facts) == (True, [])
    wrong = ("If an item arrives damaged or misprinted, report it within 14 days of delivery with a photo and we send "
             "a free replacement.")
    ok, failed = relevant(r, reply(wrong, intent="return_refund"), facts)
    assert not ok and failed == ["answers from policy section returns-damaged, not returns-window (asked)"]
    ok, failed = relevant(r, reply("Expedited shipping costs $9.99 and arrives in 2-3 business days.",
                                   intent="return_refund"), facts)
    assert not ok and "shipping-expedited" in failed[0]
    ok, failed = relevant(r, reply("Happy to help!", intent="return_refund"), facts)
    assert not ok and failed == ["states nothing of policy section returns-window"]


def test_intent_agreement_is_its_own_column(facts):
    r = rec("Ramen Samurai Academy, Vol. 1 is $9.99.", series="Ramen Samurai Academy", asin="B0RAMEN001")
    ok, intent_match, failed = dimensions.relevance(r, reply("Ramen Samurai Academy, Vol. 1 is $9.99.",
                                                             intent="price_deal"), facts)
    assert ok and intent_match is False and failed == []
    ok, intent_match, _ = dimensions.relevance(r, reply("Ramen Samurai Academy, Vol. 2 is $10.99."), facts)
    assert not ok and intent_match is True  # the label right, the answer about another volume
    row = dimensions.judge(Outcome(r, reply("Ramen Samurai Academy, Vol. 2 is $10.99.")), facts)
    assert row["relevance"] is False and row["intent_match"] is True and row["helpful"] is False


def test_a_recommendation_like_a_title_is_judged_by_its_genre(facts):
    r = rec("You might enjoy Moonlit Archive, Vol. 1.", "recommendation", series="Ramen Samurai Academy",
            genre="fantasy")
    assert relevant(r, reply("You might enjoy Moonlit Archive, Vol. 1.", intent="recommendation"), facts)[0]
    ok, failed = relevant(r, reply("You might enjoy Ramen Samurai Academy, Vol. 2.", intent="recommendation"), facts)
    assert not ok and failed == ["no recommended product is fantasy"]
