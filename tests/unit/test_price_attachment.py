"""The price guardrail attaches each price to the product it is said of (issue: answer vs card prices).

A list of picks ("A, Vol. 1 by X (comedy, $9.99); B, Vol. 1 by Y (...)") puts each price nearer to the *next*
pick's title than to its own; the guardrail used to attach it there and "repair" a right price into the next
product's. Attachment is now clause-scoped (a price belongs to the nearest mention before it in its clause),
a product the answer itself names (its card) outranks a retrieved edition matching the same words, and a title
with a sentence end inside it ("Full Swing!! Nara High, Vol. 1") still owns the price after it.
"""

from __future__ import annotations

import random

import pytest

from server.guardrails.catalog import InMemoryCatalog
from server.guardrails.price import PriceGuardrail
from server.llm.base import LLMRequest
from server.llm.templates import Facts, compose
from server.retrieval.base import Chunk, Product, ScoredChunk

pytestmark = pytest.mark.L0


def _p(asin: str, title: str, series: str, price: float, fmt: str = "tankobon", genres=("comedy", "drama")) -> Product:
    return Product(asin=asin, title=title, series=series, volume=1, author=f"{series} Author", publisher="Pub",
                   format=fmt, language="English", age_rating="T", genres=genres, price=price, stock=5)


ALPHA = _p("B0ALPHA001", "Alpha Road, Vol. 1", "Alpha Road", 9.99)
BETA = _p("B0BETA0001", "Beta Line, Vol. 1", "Beta Line", 14.99)
BETA_DIGITAL = _p("B0BETADIG1", "Beta Line, Vol. 1 (Digital Edition)", "Beta Line", 7.49, fmt="digital")
SWING = _p("B0SWING001", "Full Swing!! Nara High, Vol. 1", "Full Swing!! Nara High", 12.99)
GAMMA = _p("B0GAMMA001", "Gamma Tide, Vol. 1", "Gamma Tide", 10.99)
CATALOG = InMemoryCatalog([ALPHA, BETA, BETA_DIGITAL, SWING, GAMMA])
GUARD = PriceGuardrail(CATALOG)


def _context(*products: Product) -> list[ScoredChunk]:
    return [ScoredChunk(Chunk(chunk_id=p.asin, doc_id=p.asin, source_type="product", text=p.title, asin=p.asin), 1.0)
            for p in products]


def test_each_pick_keeps_its_own_price_in_a_list_of_picks():
    text = ("You might enjoy: Alpha Road, Vol. 1 by Alpha Road Author (comedy, drama, $9.99); "
            "Beta Line, Vol. 1 by Beta Line Author (comedy, drama, $14.99); Gamma Tide, Vol. 1 by G (comedy, $10.99).")
    result = GUARD.check(text, [ALPHA.asin, BETA.asin, GAMMA.asin])
    assert result.text == text and not result.actions, result.actions


def test_a_wrong_price_is_repaired_to_its_own_products_price_not_the_neighbours():
    text = "You might enjoy: Alpha Road, Vol. 1 by Someone (comedy, $11.99); Beta Line, Vol. 1 by Other (drama, $14.99)."
    result = GUARD.check(text, [ALPHA.asin, BETA.asin])
    assert "Alpha Road, Vol. 1 by Someone (comedy, $9.99)" in result.text
    assert [a.detail for a in result.actions] == [f"{ALPHA.asin}: $11.99 -> $9.99"]


def test_a_price_before_its_title_still_attaches_within_the_clause():
    result = GUARD.check("It's $12.00 for Alpha Road, Vol. 1; Beta Line, Vol. 1 is $14.99.", [ALPHA.asin, BETA.asin])
    assert result.text == "It's $9.99 for Alpha Road, Vol. 1; Beta Line, Vol. 1 is $14.99.", result.text


def test_the_card_outranks_a_retrieved_edition_matching_the_same_words():
    # the card is the digital edition; the print edition was only retrieved. "Beta Line vol 1" matches both.
    result = GUARD.check("Beta Line vol 1 is $7.49 and downloads instantly.", [BETA_DIGITAL.asin], _context(BETA))
    assert not result.actions, result.actions


def test_a_title_with_a_sentence_end_inside_owns_the_price_after_it():
    text = "You might enjoy: Alpha Road, Vol. 1 (comedy, $9.99); Full Swing!! Nara High, Vol. 1 by S (sports, $12.99)."
    result = GUARD.check(text, [ALPHA.asin, SWING.asin])
    assert result.text == text and not result.actions, result.actions


def test_template_recommendations_pass_the_guardrail_unchanged():
    """The composer renders each pick from its own row; the guardrail leaves every one of them as written."""
    rng = random.Random(0)
    picks = [ALPHA, BETA, BETA_DIGITAL, SWING, GAMMA]
    request = LLMRequest("recommendation", "recommend me something cozy", (), 0.5, 256, 1.0)
    for _ in range(50):
        chosen = tuple(rng.sample(picks, 3))
        text, asins = compose(request, Facts(intent="recommendation", products=chosen))
        for p in chosen:  # edition, price and stock right after the title, from the same row as the card
            assert f"{p.title} (English {'digital' if p.format == 'digital' else 'paperback'}, ${p.price:.2f}," in text
        result = GUARD.check(text, asins, _context(*picks))
        assert result.text == text and not result.actions, (text, result.actions)
