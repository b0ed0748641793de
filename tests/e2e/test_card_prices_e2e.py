"""L1: an answer and the product cards under it state one price per title (issue: answer vs card prices).

A few hundred ordinary recommendation requests -- genres, moods, gift ideas, "what should I read after X",
typos and Japanese script, generated here from the built catalog's own genres and series, not from the answer
stage's word lists -- go through the real service (real tritonserver, index and catalog), over Chat and
ChatStream. For every card whose title the answer text prices, the price in the text must be the card's price.

The checker here is deliberately independent of the service's price guardrail: a card's title is found in the
answer (the longest card title wins where one title starts another, "X, Vol. 1" inside "X, Vol. 1 (Digital
Edition)") and the first price after it, before the clause ends (";", a line break or a sentence end), is the
price the text gives it. Before the fix the price guardrail attached a pick's price to the *next* pick's title
(which stood nearer) and "repaired" it to that product's price: about half the priced cards disagreed.
"""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any, Sequence

import pytest

from clients.sdk import AsyncMangaAssistClient
from tests.e2e.test_service_e2e import built_outputs, catalog_rows, start_service  # noqa: F401 (fixtures)

pytestmark = pytest.mark.L1

PRICE = re.compile(r"\$(\d{1,3}(?:,\d{3})*\.\d{2})")
CLAUSE_END = re.compile(r";|\n|[.!?](?=\s+[A-Z\"'(])")

_ASKS = (
    "can you recommend a good {g} manga?", "any {g} series you'd suggest?", "looking for something {g}, ideas?",
    "whats a good {g} manga to start with", "recs for {g} pls", "i want to get into {g}, where do i start",
    "gift idea for a friend who loves {g}?", "my nephew likes {g}, what should i buy him",
    "recomend me some {g} manga plz", "{g} manga that's easy to get into?", "おすすめの{g}漫画ある?",
    "osusume no {g} manga wa?", "need a {g} read for a long flight",
)
_MOODS = ("cozy", "dark", "wholesome", "funny", "sad", "creepy", "relaxing", "action packed", "romantic")
_AFTER = (
    "what should I read after {s}?", "loved {s}, anything similar?", "something like {s} but different",
    "finished {s}, what next", "{s}みたいな漫画ある?",
)


def requests_from(rows: Sequence[dict[str, Any]], n: int, seed: int = 28) -> list[str]:
    rng = random.Random(seed)
    genres = sorted({g for r in rows for g in r.get("genres") or ()})
    series = sorted({r["series"] for r in rows if r.get("series")})
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 3:
            out.append(rng.choice(_AFTER).format(s=rng.choice(series)))
        else:
            topic = rng.choice(_MOODS) if kind == 2 else rng.choice(genres)
            out.append(rng.choice(_ASKS).format(g=topic))
    return out


def priced_cards(answer: str, cards: Sequence[Any]) -> tuple[int, list[str]]:
    """(cards whose title the text prices, mismatches described)."""
    titles = {c.title for c in cards}
    priced, wrong = 0, []
    for card in cards:
        for m in re.finditer(re.escape(card.title), answer):
            if any(t != card.title and answer.startswith(t, m.start()) and len(t) > len(card.title) for t in titles):
                continue  # a longer card title starts here: that card owns this span
            rest = answer[m.end():]
            end = CLAUSE_END.search(rest)
            found = PRICE.search(rest[: end.start() if end else len(rest)])
            if found is None:
                continue
            priced += 1
            said = float(found.group(1).replace(",", ""))
            if abs(said - card.price) > 0.005:
                wrong.append(f"{card.title!r}: text ${said:.2f}, card ${card.price:.2f}")
    return priced, wrong


def test_the_checker_sees_a_price_handed_to_the_next_title():
    """The checker can fail: the pre-fix shape of a list of picks (A's price rewritten to B's) is a mismatch."""

    class Card:
        def __init__(self, title: str, price: float) -> None:
            self.title, self.price = title, price

    cards = [Card("Alpha, Vol. 1", 9.99), Card("Beta, Vol. 1", 14.99), Card("Beta, Vol. 1 (Digital Edition)", 7.49)]
    good = "You might enjoy: Alpha, Vol. 1 by A (comedy, $9.99); Beta, Vol. 1 (Digital Edition) by B ($7.49)."
    bad = "You might enjoy: Alpha, Vol. 1 by A (comedy, $14.99); Beta, Vol. 1 by B (drama, $14.99)."
    assert priced_cards(good, cards) == (2, [])
    assert priced_cards(bad, cards)[1] == ["'Alpha, Vol. 1': text $14.99, card $9.99"]


@pytest.fixture
async def client(start_service, triton):
    service = await start_service(triton.grpc_url)
    async with AsyncMangaAssistClient(service.target, timeout=60.0) as c:
        yield c


async def test_recommendations_state_each_cards_own_price_on_chat_and_chat_stream(client, catalog_rows):
    messages = requests_from(catalog_rows, 240)
    limit = asyncio.Semaphore(4)

    async def ask(i: int, message: str) -> tuple[str, str, Sequence[Any]]:
        async with limit:
            if i % 5 == 4:  # every fifth over ChatStream: the streamed text and the final answer both count
                items = [item async for item in client.chat_stream(message, session_id=f"cards-{i}")]
                final = next(x.final for x in items if x.WhichOneof("event") == "final")
                streamed = "".join(x.delta for x in items if x.WhichOneof("event") == "delta")
                return message, final.answer + "\n" + streamed, final.cards
            reply = await client.chat(message, session_id=f"cards-{i}")
            return message, reply.answer, reply.cards

    replies = await asyncio.gather(*(ask(i, m) for i, m in enumerate(messages)))
    total, wrong, answered = 0, [], 0
    for message, answer, cards in replies:
        priced, bad = priced_cards(answer, cards)
        total += priced
        answered += priced > 0
        wrong += [f"{message!r}: {b}" for b in bad]
    print(f"\n[card prices] {answered} of {len(messages)} answers price their cards; "
          f"{total} priced cards, {len(wrong)} mismatches")
    assert answered >= 150 and total >= 300, (answered, total)  # the test saw a few hundred priced cards
    assert not wrong, wrong[:10]
