"""Order ids and policy figures: an answer states only the customer's own order id and figures from the store's data."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.guardrails.catalog import InMemoryCatalog
from server.guardrails.figures import NAME_FIGURE, NAME_ORDER, FiguresGuardrail
from server.guardrails.suite import GuardrailSuite
from server.llm.base import LLMAnswer
from server.retrieval.base import Chunk, ScoredChunk

pytestmark = pytest.mark.L0

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "guardrails"
CATALOG = InMemoryCatalog.from_jsonl(FIXTURES / "catalog.jsonl")

POLICY = ScoredChunk(
    Chunk(
        "returns-window#0", "returns-window", "policy",
        "Returns and shipping\n"
        "Returns are accepted within 30 days of delivery. Standard shipping takes 5-7 business days. "
        "Orders over $35 ship free. Orders placed before 1 p.m. Eastern ship the same day.",
    ),
    0.9,
)
SPY5 = ScoredChunk(Chunk("p-spy5#0", "p-spy5", "product", "Spy x Family, Vol. 5 ...", "B0SPYFAM05"), 0.8)

OWN_ID, OTHER_ID = "MA-12345678", "MA-87654321"


@pytest.fixture(scope="module")
def figures() -> FiguresGuardrail:
    return FiguresGuardrail(CATALOG)


@pytest.fixture(scope="module")
def suite() -> GuardrailSuite:
    return GuardrailSuite(CATALOG)


def answer(text: str, asins=()) -> LLMAnswer:
    return LLMAnswer(text=text, tier="small", model="test", product_asins=tuple(asins))


def kinds(result) -> set[tuple[str, str]]:
    return {(a.guardrail, a.action) for a in result.actions}


# --- order ids ------------------------------------------------------------------------------------


def test_order_id_not_given_by_customer_is_removed_own_id_stays(figures):
    text = (
        f"Your order {OWN_ID} shipped yesterday with UPS and should arrive soon. "
        f"For example, order {OTHER_ID} is already out for delivery to you."
    )
    out = figures.check(text, (), (), f"where is my order {OWN_ID}?")
    assert OWN_ID in out.text
    assert OTHER_ID not in out.text and "out for delivery" not in out.text
    assert kinds(out) == {(NAME_ORDER, "removed")}
    assert OTHER_ID in out.actions[0].detail
    assert not out.needs_fallback


def test_loosely_written_customer_id_counts_as_given(figures):
    text = f"Your order {OWN_ID} shipped yesterday with UPS and should arrive soon."
    out = figures.check(text, (), (), "status of ma 12345678 please")
    assert out.text == text and out.actions == ()


def test_no_id_in_message_means_no_id_may_be_stated(figures):
    text = f"Your order {OWN_ID} shipped yesterday with UPS. Anything else I can help you find today?"
    out = figures.check(text, (), (), "where is my order?")
    assert OWN_ID not in out.text and "Anything else" in out.text
    assert (NAME_ORDER, "removed") in kinds(out)


def test_message_none_skips_the_order_id_check(figures):
    text = f"Your order {OTHER_ID} shipped yesterday with UPS and should arrive soon."
    out = figures.check(text, (), (), None)
    assert out.text == text and out.actions == () and not out.needs_fallback


# --- policy figures -------------------------------------------------------------------------------


def test_invented_policy_figure_is_removed_quoted_ones_stay(figures):
    text = (
        "Returns are accepted within 60 days of delivery. "
        "Standard shipping takes 5-7 business days. "
        "Orders over $35 ship free."
    )
    out = figures.check(text, (), [POLICY], "what's your return policy?")
    assert "60 days" not in out.text
    assert "5-7 business days" in out.text and "$35" in out.text
    assert kinds(out) == {(NAME_FIGURE, "removed")}
    assert "60 days" in out.actions[0].detail
    assert not out.needs_fallback


def test_figures_quoted_from_the_chunk_pass_untouched(figures):
    text = (
        "Returns are accepted within 30 days of delivery. Standard shipping takes 5-7 business days. "
        "Orders over $35 ship free, and orders placed before 1 p.m. ship the same day."
    )
    out = figures.check(text, (), [POLICY], "tell me about returns and shipping")
    assert out.text == text and out.actions == ()


@pytest.mark.parametrize(
    "text",
    [
        "You have a 30-day window to send it back to us.",  # "30-day" == "30 days"
        "Standard shipping takes 5 to 7 business days in total.",  # "5 to 7" == "5-7"
        "Orders over $ 35 ship free of charge to you.",
        "Orders placed before 1 pm ship the same day.",
    ],
)
def test_figures_match_in_normalised_form(figures, text):
    out = figures.check(text, (), [POLICY], "question")
    assert out.actions == (), out.actions


def test_invented_clock_time_is_removed(figures):
    # "p.m." ends in a dot: the figure must still be recognised (in the chunk and in the answer)
    text = "Orders placed before 3 p.m. ship the same day. Standard shipping takes 5-7 business days."
    out = figures.check(text, (), [POLICY], "when is the cutoff?")
    assert "3 p.m." not in out.text and "5-7 business days" in out.text
    assert "'3 p.m.'" in out.actions[0].detail


def test_figure_from_customer_message_is_allowed(figures):
    text = "Returns after 45 days are not something I can confirm for you, sorry."
    assert figures.check(text, (), [POLICY], "can I return it after 45 days?").actions == ()
    assert (NAME_FIGURE, "removed") in kinds(figures.check(text, (), [POLICY], "can I return it later?"))


def test_catalog_price_of_asin_in_play_stays(figures):
    text = "Spy x Family, Vol. 5 (B0SPYFAM05) is $11.99 and in stock."
    # named by ASIN in the text / the answer's cards
    assert figures.check(text, (), (), "how much is spy x family 5?").actions == ()
    assert figures.check("Spy x Family, Vol. 5 is $11.99 and in stock.", ("B0SPYFAM05",), (), "price?").actions == ()
    # behind a retrieved chunk
    assert figures.check("Spy x Family, Vol. 5 is $11.99 and in stock.", (), [SPY5], "price?").actions == ()
    # a dollar amount that is no product's price in play and not in any chunk is removed
    out = figures.check("Spy x Family, Vol. 5 is $13.49 and in stock. It is a fun read for teens.", (), [SPY5], "price?")
    assert "$13.49" not in out.text and (NAME_FIGURE, "removed") in kinds(out)


def test_nothing_meaningful_left_needs_fallback(figures):
    out = figures.check("Returns are accepted within 60 days.", (), [POLICY], "return policy?")
    assert out.needs_fallback and "60 days" not in out.text
    out = figures.check(f"Order {OTHER_ID} has shipped.", (), (), "where is my order?")
    assert out.needs_fallback and OTHER_ID not in out.text


# --- wiring in the suite --------------------------------------------------------------------------


def test_suite_removes_foreign_order_id_and_keeps_own(suite):
    text = (
        f"Your order {OWN_ID} shipped yesterday with UPS and should arrive soon.\n"
        f"- Order {OTHER_ID} is also on its way to you."
    )
    out = suite.screen_output(answer(text), [POLICY], f"where is {OWN_ID}?")
    assert OWN_ID in out.answer.text and OTHER_ID not in out.answer.text
    assert (NAME_ORDER, "removed") in kinds(out)
    assert not out.needs_fallback


def test_suite_without_message_skips_order_id_check(suite):
    text = f"Your order {OTHER_ID} shipped yesterday with UPS and should arrive soon."
    out = suite.screen_output(answer(text), [POLICY])
    assert OTHER_ID in out.answer.text
    assert (NAME_ORDER, "removed") not in kinds(out)


def test_suite_removes_invented_policy_figure(suite):
    text = (
        "Returns are accepted within 60 days of delivery. Standard shipping takes 5-7 business days. "
        "Orders over $35 ship free, and orders placed before 1 p.m. ship the same day."
    )
    out = suite.screen_output(answer(text), [POLICY], "what's your return policy?")
    assert "60 days" not in out.answer.text
    for kept in ("5-7 business days", "$35", "1 p.m."):
        assert kept in out.answer.text
    assert kinds(out) == {(NAME_FIGURE, "removed")}
    assert not out.needs_fallback


def test_suite_keeps_catalog_price_and_passes_benign_answer(suite):
    a = answer("Spy x Family, Vol. 5 (B0SPYFAM05) is $11.99 and in stock.", ["B0SPYFAM05"])
    out = suite.screen_output(a, [SPY5], "how much is spy x family vol 5?")
    assert out.actions == () and not out.needs_fallback and out.answer == a


def test_suite_falls_back_when_only_invented_figures(suite):
    out = suite.screen_output(answer("Returns are accepted within 60 days."), [POLICY], "return policy?")
    assert out.needs_fallback
    assert (NAME_FIGURE, "removed") in kinds(out)
