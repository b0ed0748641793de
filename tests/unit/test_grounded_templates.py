"""The template composer states only facts it was given: catalog rows, the customer's order, quoted policy text."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from model_repository.datagen.policies import generate_policies
from server.guardrails.figures import FiguresGuardrail
from contracts.catalog import order_customer
from server.ids import find_order_ids
from server.llm.base import LLMAnswer, LLMRequest
from server.llm.templates import ASK_ORDER_ID, Facts, TemplateTier, compose
from server.retrieval.base import Chunk, Product, ScoredChunk
from server.retrieval.entities import EntityResolver, Resolution
from server.retrieval.store import CatalogStore

pytestmark = pytest.mark.L0

POLICIES = {p["policy_id"]: p for p in generate_policies()}


def policy_chunk(policy_id: str, score: float = 0.9) -> ScoredChunk:
    p = POLICIES[policy_id]
    return ScoredChunk(Chunk(f"{policy_id}#0", policy_id, "policy", p["title"] + "\n" + p["text"]), score)


def req(intent: str, message: str, context=()) -> LLMRequest:
    return LLMRequest(intent=intent, user_message=message, context=tuple(context), temperature=0.0,
                      max_tokens=256, timeout_s=2.0)


# store, resolver: tests/unit/conftest.py


class AsOwner:
    """The template tier, called as the facts stage calls it for the customer who placed the message's first
    order (``customer`` overrides): every order id named, looked up on that account through the real store."""

    def __init__(self, store: CatalogStore, customer: str | None = None) -> None:
        self.tier, self.store, self.customer = TemplateTier(), store, customer

    async def generate(self, request: LLMRequest, facts: Facts) -> "LLMAnswer":
        ids = find_order_ids(request.user_message) or ([facts.order_id] if facts.order_id else [])
        customer = self.customer if self.customer is not None else (
            order_customer({"order_id": ids[0]}) if ids else "C-1000")
        orders = {i: self.store.get_order(i, customer) for i in ids}
        return await self.tier.generate(request, replace(facts, customer_id=customer, orders=orders))

    def blocked(self):
        return self.tier.blocked()


@pytest.fixture(scope="module")
def tier(store) -> AsOwner:
    return AsOwner(store)


def facts_for(resolver: EntityResolver, message: str) -> Facts:
    res = resolver.resolve(message)
    return Facts(products=res.products, resolution=res)


# --- "every figure comes from the facts" ----------------------------------------------------------

_MONEY = re.compile(r"\$\d[\d,]*(?:\.\d{2})?")
_DAYS = re.compile(r"\b\d+(?:-\d+)?\s(?:business\s)?days?\b", re.I)


def figures_in(text: str) -> list[str]:
    return _MONEY.findall(text) + _DAYS.findall(text)


def assert_figures_grounded(answer: str, request: LLMRequest, facts: Facts) -> None:
    source = " ".join(c.chunk.text for c in (*request.context, *facts.policies)) + " " + request.user_message
    prices = {f"${p.price:.2f}" for p in facts.products}
    for fig in figures_in(answer):
        assert fig in source or fig in prices, f"{fig!r} in {answer!r} is not in the facts given"


# --- products -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    ["ワンピースの3巻は在庫ありますか", "is one piece vol 1 in stock?", "jjk 5 price", "sousou no frieren vol 2"],
)
async def test_product_answer_states_title_price_and_stock_from_the_product(tier, resolver, message):
    facts = facts_for(resolver, message)
    request = req("product_question", message)
    a = await tier.generate(request, facts)
    p = facts.products[0]
    assert p.title in a.text
    assert f"${p.price:.2f}" in a.text
    if p.stock > 0:
        assert "in stock" in a.text and "out of stock" not in a.text
    else:
        assert "out of stock" in a.text and "in stock" not in a.text
    assert a.product_asins[0] == p.asin and a.tier == "template"
    assert_figures_grounded(a.text, request, facts)


def test_hand_made_product_out_of_stock():
    p = Product(asin="B0TESTPR01", title="Test Series, Vol. 7", series="Test Series", volume=7, author="A. Author",
                publisher="Pub", format="tankobon", language="English", age_rating="Teen", price=12.49, stock=0)
    text, asins = compose(req("product_question", "is test series 7 in stock?"), Facts(products=(p,)))
    assert "Test Series, Vol. 7" in text and "$12.49" in text and "out of stock" in text
    assert asins == ["B0TESTPR01"]


async def test_not_carried_is_declined_and_states_no_price(tier, resolver):
    for facts in (Facts(resolution=Resolution(not_carried=("Chainsaw Man",))),
                  facts_for(resolver, "is chainsaw man vol 3 in stock?")):
        a = await tier.generate(req("product_question", "is chainsaw man vol 3 in stock?"), facts)
        assert "don't carry Chainsaw Man" in a.text
        assert "$" not in a.text and a.product_asins == ()


async def test_fuzzy_match_says_did_you_mean(tier, resolver):
    message = "vinlnad saga vol 2 price"
    facts = facts_for(resolver, message)
    a = await tier.generate(req("price_deal", message), facts)
    assert a.text.startswith("Did you mean Vinland Saga?")
    assert "Vinland Saga, Vol. 2" in a.text and f"${facts.products[0].price:.2f}" in a.text
    assert_figures_grounded(a.text, req("price_deal", message), facts)


async def test_missing_volume_lists_what_is_carried_and_no_price(tier, resolver):
    facts = facts_for(resolver, "one piece vol 40")
    a = await tier.generate(req("product_question", "one piece vol 40"), facts)
    assert "Volume 40 isn't in our catalog" in a.text
    assert "$" not in a.text and a.product_asins == ()


# --- orders ---------------------------------------------------------------------------------------


async def test_order_status_without_id_asks_for_it(tier):
    a = await tier.generate(req("order_status", "where is my order?"), Facts())
    assert a.text == ASK_ORDER_ID and "order number" in a.text
    assert "MA-" not in a.text


async def test_order_status_unknown_id(tier):
    a = await tier.generate(req("order_status", "where is MA-99999999?"), Facts())
    assert "couldn't find" in a.text and "MA-99999999" in a.text


async def test_another_customers_order_reads_like_an_unknown_one(store):
    (o,) = _orders(store, "shipped")
    owner = order_customer(o)
    other = next(f"C-{n}" for n in range(1000, 1200) if f"C-{n}" != owner)
    for customer, says in ((other, "on your account"), ("", "signed-in customer")):
        a = await AsOwner(store, customer).generate(req("order_status", f"where is {o['order_id']}"), Facts())
        assert says in a.text, a.text
        for field in ("status", "carrier", "tracking_number", "placed_at", "eta"):
            assert o[field] is None or str(o[field]) not in a.text.replace(o["order_id"], ""), (field, a.text)
    mine = await AsOwner(store, owner).generate(req("order_status", f"where is {o['order_id']}"), Facts())
    assert o["tracking_number"] in mine.text


async def test_order_status_known_id_states_the_order_row(tier, store):
    import json

    rows = [json.loads(line) for line in open(store_orders_path(store), encoding="utf-8")]
    shipped = next(o for o in rows if o["status"] == "shipped")
    a = await tier.generate(req("order_status", f"where is {shipped['order_id']}"), Facts())
    assert shipped["order_id"] in a.text and shipped["carrier"] in a.text and shipped["tracking_number"] in a.text
    assert shipped["eta"] in a.text
    ids = set(re.findall(r"MA-\d{8}", a.text))
    assert ids == {shipped["order_id"]}


def store_orders_path(store: CatalogStore):
    row = store._conn.execute("SELECT value FROM store_meta WHERE key = 'source'").fetchone()
    import json

    return json.loads(row[0])["orders"]


# --- policies -------------------------------------------------------------------------------------


CANADA = "do you ship to canada and how much?"
PRICE_MATCH = "how long do I have to ask for a price match?"


async def test_international_shipping_quotes_the_price(tier):
    context = [policy_chunk("shipping-international"), policy_chunk("shipping-standard", 0.5)]
    request = req("policy_faq", CANADA, context)
    a = await tier.generate(request, Facts())
    assert "$14.99" in a.text
    assert "Canada" in a.text
    assert_figures_grounded(a.text, request, Facts())


async def test_price_match_quotes_the_window(tier):
    context = [policy_chunk("pricing-price_match"), policy_chunk("pricing-coupons", 0.5)]
    request = req("policy_faq", PRICE_MATCH, context)
    a = await tier.generate(request, Facts())
    assert "14 days" in a.text
    assert_figures_grounded(a.text, request, Facts())


async def test_policy_without_chunks_states_no_figure(tier):
    a = await tier.generate(req("policy_faq", CANADA, ()), Facts())
    assert figures_in(a.text) == [] and "human agent" in a.text


# --- every composed answer: figures grounded, and the figures guardrail has nothing to remove -----


def _cases(resolver):
    yield req("policy_faq", CANADA, [policy_chunk("shipping-international")]), Facts()
    yield req("policy_faq", PRICE_MATCH, [policy_chunk("pricing-price_match")]), Facts()
    yield req("return_refund", "how long do I have to return something?", [policy_chunk("returns-window")]), Facts()
    yield req("policy_faq", "送料はいくらですか", [policy_chunk("shipping-standard")]), Facts()
    for message in ("ワンピースの3巻は在庫ありますか", "jjk 5 price", "berserk box set", "one piece vol 40"):
        yield req("product_question", message), facts_for(resolver, message)
    yield req("price_deal", "jjk 5 price, and do you price match?", [policy_chunk("pricing-price_match")]), \
        facts_for(resolver, "jjk 5 price")
    res = resolver.resolve("something like berserk")
    picks = tuple(resolver.recommend("something like berserk", res, [], 3))
    yield req("recommendation", "something like berserk"), Facts(products=picks, resolution=res)


def test_every_figure_in_composed_answers_is_in_the_facts(store, resolver):
    guard = FiguresGuardrail(store)
    n = 0
    for request, facts in _cases(resolver):
        text, asins = compose(request, facts)
        assert_figures_grounded(text, request, facts)
        checked = guard.check(text, tuple(asins), request.context, request.user_message)
        assert checked.actions == (), (text, checked.actions)
        n += 1
    assert n == 10


# --- escalation, chitchat -------------------------------------------------------------------------


async def test_escalation_hands_to_a_human(tier):
    a = await tier.generate(req("escalation", "this is ridiculous, let me talk to someone"), Facts())
    assert "human agent" in a.text


async def test_japanese_thanks(tier):
    a = await tier.generate(req("chitchat", "ありがとうございます！"), Facts())
    assert a.text.startswith("You're welcome")


# --- a message that asks two things, and labels the store's data overrides -------------------------


def stage_facts(resolver, message: str, intent: str) -> Facts:
    from server.stages.entities import _facts

    return _facts(resolver, message, intent, None, (), 3)


async def test_product_and_policy_in_one_message_get_both_answers_in_separate_paragraphs(tier, resolver):
    message = "do you have berserk vol 14? also what does manga club premium cost"
    facts = stage_facts(resolver, message, "policy_faq")  # the classifier saw the policy half only
    a = await tier.generate(req("policy_faq", message), facts)
    product_part, _, policy_part = a.text.partition("\n\n")
    assert "Berserk" in product_part and policy_part.startswith(POLICIES["membership-plans"]["title"])
    assert a.product_asins and all(store_asin.startswith("B0") for store_asin in a.product_asins)


async def test_recommendation_and_shipping_question_answer_both(tier, resolver):
    message = "Any horror suggestions? Also, do you ship to Australia and what does it cost?"
    facts = stage_facts(resolver, message, "policy_faq")
    a = await tier.generate(req("policy_faq", message), facts)
    assert "You might enjoy" in a.text and "$14.99" in a.text
    assert all("horror" in p.genres for p in facts.products)


@pytest.mark.parametrize(
    "message, label", [("mha volume 30 pls", "chitchat"), ("チェンソーマンの1巻ってもう出てますか？", "order_status")]
)
async def test_a_title_not_carried_is_declined_whatever_the_label(tier, resolver, message, label):
    a = await tier.generate(req(label, message), stage_facts(resolver, message, label))
    assert "don't carry" in a.text and "$" not in a.text


async def test_thanks_stays_small_talk_even_naming_a_title(tier, resolver):
    message = "thanks for the help with one piece!"
    a = await tier.generate(req("chitchat", message), stage_facts(resolver, message, "chitchat"))
    assert a.text.startswith("You're welcome")


async def test_competitor_price_gets_the_price_match_policy_next_to_our_price(tier, resolver):
    message = "Kinokuniya lists Death Note volume 9 at $10.99. Will you match it?"
    facts = stage_facts(resolver, message, "price_deal")
    a = await tier.generate(req("price_deal", message), facts)
    product_part, _, policy_part = a.text.partition("\n\n")
    assert "Death Note, Vol. 9" in product_part and f"${facts.products[0].price:.2f}" in product_part
    assert "14 days" in policy_part and "$10.99" not in a.text  # the competitor's price is not restated


@pytest.mark.parametrize(
    "message",
    ["My order is $42. Can I split it into installments?", "I have 350 Manga Points. How much money is that off my order?"],
)
async def test_a_rule_question_labelled_order_status_without_an_id_gets_the_policy(tier, resolver, message):
    facts = stage_facts(resolver, message, "order_status")
    a = await tier.generate(req("order_status", message), facts)
    assert a.text != ASK_ORDER_ID and ":" in a.text.split(".")[0]  # "<section title>: <quoted rule>"
    titles = {p["title"] for p in POLICIES.values()}
    assert a.text.split(":")[0] in titles


async def test_a_policy_question_labelled_product_question_naming_no_title_gets_the_policy(tier, resolver):
    message = "予約をキャンセルすると手数料はかかりますか"
    facts = stage_facts(resolver, message, "product_question")
    a = await tier.generate(req("product_question", message), facts)
    assert "couldn't find that title" not in a.text and a.text.split(":")[0] in {p["title"] for p in POLICIES.values()}


# --- the intent the answer addresses, and every ask of a message ----------------------------------


def _orders(store, status: str, n: int = 1) -> list[dict]:
    import json

    rows = [json.loads(line) for line in open(store_orders_path(store), encoding="utf-8")]
    return [o for o in rows if o["status"] == status][:n]


@pytest.mark.parametrize(
    "message, label, settled",
    [
        ("any josei bangers u got?", "chitchat", "recommendation"),  # a genre named outright: picks wanted
        ("more mystery pls", "chitchat", "recommendation"),
        ("haha that's funny", "chitchat", "chitchat"),  # a mood is not a genre ask
        ("thanks for the help with one piece!", "chitchat", "chitchat"),
        ("ナルトは何巻まで取り扱っていますか", "order_status", "product_question"),  # a title, no order in sight
        ("where is my naruto order?", "order_status", "order_status"),  # the order holds the title
        ("予約をキャンセルすると手数料はかかりますか", "product_question", "policy_faq"),
        ("is naruto vol 3 in stock?", "product_question", "product_question"),
        ("Vagabond volume 12 absolutely broke me. What a chapter.", "chitchat", "chitchat"),  # fan talk, no ask
        ("jojo part 1 do u have it", "chitchat", "product_question"),
        ("Are you a person or a program?", "escalation", "chitchat"),  # a question about the bot, not a request
        ("gimme isekai recs pls", "price_deal", "recommendation"),
        ("is berserk recommended for teens?", "product_question", "product_question"),  # about Berserk, no picks
        ("anything similar to berserk?", "product_question", "recommendation"),
        ("仮想通貨で払えますか", "chitchat", "policy_faq"),
        ("What do you charge for the tokyoghoul box set?", "policy_faq", "price_deal"),
        ("got any attack on titan vol 5 rn?", "recommendation", "product_question"),  # a volume asked, no picks
        ("loved attack on titan, anything like it?", "recommendation", "recommendation"),
        ("can i swap my horimiya 2 for a different volume", "product_question", "return_refund"),
    ],
)
def test_the_facts_stage_settles_the_intent_the_answer_addresses(resolver, message, label, settled):
    assert stage_facts(resolver, message, label).intent == settled


async def test_an_order_lookup_and_a_product_ask_in_one_message_get_both(tier, store, resolver):
    (o,) = _orders(store, "shipped")
    message = f"Where is order {o['order_id']}? Also, how much is Naruto volume 3?"
    facts = _facts_with_order(resolver, message, "order_status", o["order_id"])
    a = await tier.generate(req("order_status", message), facts)
    order_part, _, product_part = a.text.partition("\n\n")
    assert o["order_id"] in order_part and o["tracking_number"] in order_part
    assert "Naruto, Vol. 3" in product_part and f"${facts.products[0].price:.2f}" in product_part


async def test_every_order_id_given_is_looked_up(tier, store):
    shipped_by = {order_customer(o): o for o in _orders(store, "shipped", n=1000)}
    delivered, shipped = next((o, shipped_by[order_customer(o)]) for o in _orders(store, "delivered", n=1000)
                              if order_customer(o) in shipped_by)  # two orders of one account
    message = f"I want to return the books from {delivered['order_id']}, and where is my other order {shipped['order_id']}?"
    a = await tier.generate(req("return_refund", message), Facts(order_id=delivered["order_id"]))
    assert delivered["order_id"] in a.text and shipped["order_id"] in a.text and shipped["tracking_number"] in a.text


async def test_the_handoff_names_the_order_for_the_agent(tier, store):
    (o,) = _orders(store, "delivered")
    message = f"Order {o['order_id']} has been a disaster from start to finish. Get me a supervisor."
    a = await tier.generate(req("escalation", message), Facts(order_id=o["order_id"]))
    assert a.text.startswith("I'm sorry for the trouble") and "human agent" in a.text and o["order_id"] in a.text


def _facts_with_order(resolver, message: str, intent: str, order_id: str) -> Facts:
    from server.stages.entities import _facts

    return _facts(resolver, message, intent, order_id, (), 3)


@pytest.mark.parametrize("says", [
    "I'm not the account holder for {oid}, but I need its tracking number and delivery address.",
    "Can you give me the tracking number for {oid}? It's my roommate's order, she's at work.",
    "I found a receipt with {oid} on it. Who placed that order and where is it going?",
])
async def test_someone_elses_order_gets_no_details(tier, store, says):
    (o,) = _orders(store, "shipped")
    message = says.format(oid=o["order_id"])
    for intent in ("order_status", "escalation"):
        a = await tier.generate(req(intent, message), Facts(order_id=o["order_id"]))
        assert o["tracking_number"] not in a.text and o["carrier"] not in a.text and o["eta"] not in a.text, a.text
        assert "customer who placed the order" in a.text


async def test_fan_talk_about_a_title_is_answered_in_kind_naming_it(tier, resolver):
    message = "Vagabond volume 12 absolutely broke me. What a chapter."
    facts = stage_facts(resolver, message, "chitchat")
    a = await tier.generate(req("chitchat", message), facts)
    assert facts.intent == "chitchat" and "Vagabond" in a.text and "$" not in a.text
