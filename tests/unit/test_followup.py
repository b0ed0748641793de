"""Follow-ups resolved from the last turn into the text every later stage reads (server/stages/followup.py)."""

from __future__ import annotations

import pytest

from server.llm.templates import ASK_ORDER_ID
from server.sessions.store import MemorySessionStore, Turn
from server.stages.followup import resolve

pytestmark = pytest.mark.L0

# store, resolver: tests/unit/conftest.py (the generated catalog, seed 1234)


def naruto_turn(resolver, message="how much is naruto vol 3?") -> Turn:
    res = resolver.resolve(message)
    return Turn(message=message, intent="price_deal", series=res.series, volume=res.volume,
                asins=tuple(p.asin for p in res.products[:3]))


def test_a_bare_order_id_after_the_bot_asked_for_one_continues_that_ask(resolver):
    asked = Turn(message="where's my package??", intent="order_status", asked_order_id=True, answer=ASK_ORDER_ID)
    for reply in ("MA-12345678", "it's ma 12345678", "order number is #MA-12345678 thanks", "MA-12345678です"):
        f = resolve(reply, [asked], resolver)
        assert (f.kind, f.refers_to, f.text) == ("order_id", "MA-12345678", "where's my package?? MA-12345678"), reply
    # with no ask before it, a bare id stands alone
    assert resolve("MA-12345678", [Turn(message="hi", intent="chitchat")], resolver).kind == ""


@pytest.mark.parametrize("reply, volume", [
    ("what about vol 4?", 4), ("and volume 5", 5), ("4巻は？", 4), ("the next one?", 4), ("what about 6?", 6),
])
def test_a_volume_follow_up_takes_the_series_and_the_ask_of_the_last_turn(resolver, reply, volume):
    f = resolve(reply, [naruto_turn(resolver)], resolver)
    assert f.kind == "volume" and f.refers_to == f"Naruto vol {volume}"
    assert f.text.startswith("how much is Naruto vol") or "Naruto vol" in f.text
    assert resolver.resolve(f.text).series == "Naruto" and resolver.resolve(f.text).volume == volume


def test_an_edition_follow_up_names_the_series(resolver):
    f = resolve("and the box set?", [naruto_turn(resolver)], resolver)
    assert f.kind == "edition" and resolver.resolve(f.text).format == "box_set" and "Naruto" in f.text


def test_that_one_and_the_second_one_are_the_products_the_last_answer_showed(resolver, store):
    last = naruto_turn(resolver)
    first, second = (store.get_product(a).title for a in last.asins[:2])
    assert resolve("is that one still in stock", [last], resolver).text == f"is {first} still in stock"
    f = resolve("the second one you showed", [last], resolver)
    assert (f.kind, f.refers_to) == ("product", second) and f.text == f"how much is {second}?"


@pytest.mark.parametrize("reply, expect", [
    ("still available?", "is {first} in stock?"), ("in stock?", "is {first} in stock?"),
    ("2nd one pls", "how much is {second}?"), ("how do i send it back", "how do i send {first} back"),
])
def test_bare_asks_and_pronouns_refer_to_what_the_last_answer_showed(resolver, store, reply, expect):
    last = naruto_turn(resolver)
    first, second = (store.get_product(a).title for a in last.asins[:2])
    assert resolve(reply, [last], resolver).text == expect.format(first=first, second=second)


def test_a_message_naming_its_own_title_or_with_no_history_stands_alone(resolver):
    assert resolve("is berserk vol 2 in stock?", [naruto_turn(resolver)], resolver).kind == ""
    assert resolve("what about vol 4?", [], resolver).text == "what about vol 4?"


async def test_memory_store_keeps_the_last_turns_and_forgets_after_the_ttl():
    now = [0.0]
    store = MemorySessionStore(ttl_s=60, max_turns=2, max_turn_chars=10, max_sessions=2, clock=lambda: now[0])
    for i in range(3):
        await store.append("s1", Turn(message=f"message number {i}", answer="x" * 50))
    turns = await store.history("s1")
    assert [t.message for t in turns] == ["message n\u2026"] * 2 and len(turns[0].answer) == 10  # bounded, clipped
    now[0] = 61.0
    assert await store.history("s1") == []  # expired
    for sid in ("a", "b", "c"):
        await store.append(sid, Turn(message=sid))
    assert len(store) == 2 and await store.history("a") == []  # least recently used dropped past max_sessions


def test_the_llm_prompt_carries_the_last_turns_within_a_budget_after_the_cached_prefix():
    from server.llm.prompts import HISTORY_CHARS, build_prompt

    history = [("how much is naruto vol 3?", "Naruto, Vol. 3 is $11.99 and in stock."),
               ("x" * HISTORY_CHARS, "too long to fit"),
               ("what about vol 4?", "Naruto, Vol. 4 is $10.99 and in stock.")]
    with_history = build_prompt("price_deal", "and the box set?", (), history=history)
    alone = build_prompt("price_deal", "and the box set?", ())
    assert with_history.prefix_key() == alone.prefix_key()  # the shared prefix (KV cache) is unchanged
    assert with_history.history == (history[-1],)  # newest first, within the budget; the oversized turn ends it
    chat = with_history.to_chat()
    assert chat[-3:-1] == [{"role": "user", "content": history[-1][0]}, {"role": "assistant", "content": history[-1][1]}]
    assert [m["text"] for m in with_history.to_converse()["messages"][-3]["content"]] == [history[-1][0]]


async def test_the_session_bucket_refills_at_its_rate():
    now = [0.0]
    store = MemorySessionStore(rate_per_s=2.0, burst=3, clock=lambda: now[0])
    assert [await store.allow("s") for _ in range(4)] == [None, None, None, "session"]  # the burst, then refused
    assert await store.allow("other") is None  # one bucket per session
    now[0] = 0.5  # one token back at 2/s
    assert await store.allow("s") is None and await store.allow("s") == "session"
    assert await MemorySessionStore(rate_per_s=0).allow("s") is None  # 0 = off


async def test_a_customer_bucket_spans_their_sessions_and_takes_from_both_or_neither():
    now = [0.0]
    store = MemorySessionStore(rate_per_s=1.0, burst=2, customer_rate_per_s=1.0, customer_burst=3, clock=lambda: now[0])
    got = [await store.allow(f"s{i}", "C-1") for i in range(4)]  # a new session each time: only the customer limits
    assert got == [None, None, None, "customer"]
    assert await store.allow("s9", "C-2") is None  # another customer has their own bucket
    assert await store.allow("s0", "C-2") is None and await store.allow("s0", "C-2") == "session"
    now[0] = 1.0  # one token back in every bucket; a refused call took none
    assert await store.allow("s0", "C-1") is None and await store.allow("s5", "C-1") == "customer"
    assert await store.allow("s5", "") is None  # anonymous: the session's bucket only


async def test_expired_sessions_leave_memory_when_others_write():
    now = [0.0]
    store = MemorySessionStore(ttl_s=60, clock=lambda: now[0])
    await store.append("old", Turn(message="hi"))
    now[0] = 61.0
    await store.append("new", Turn(message="hi"))
    assert len(store) == 1  # "old" expired and was dropped without being read again
