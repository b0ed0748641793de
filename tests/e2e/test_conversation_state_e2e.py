"""L1: conversation state end to end (issue 23.2) -- one real-service conversation per state slot.

The service (real tritonserver, built index and catalog; tests/e2e/test_service_e2e.py's fixtures, sessions in
memory, template answers) plays conversations of the frozen open-world development set
(tests/fixtures/conversations_openworld/dev_conversations.jsonl; the held-out half is only measured) turn by turn
under one session id, and the last answer must address the item in play (model_repository/lifecycle/evaluation/conversations_openworld.judge): an attribute of
the product discussed -- each of the seven, one asked two turns later after small talk --, another volume named
by an ordinal or a number word, the volume before, the author's other series, and an order id given two turns
earlier. 12 conversations, ~28 chats.
"""

from __future__ import annotations

import uuid

import pytest

from model_repository.lifecycle.evaluation import conversations_openworld as ow
from tests.e2e.test_service_e2e import (  # noqa: F401 (fixtures)
    built_outputs, client, e2e_settings, service, start_service,
)

pytestmark = pytest.mark.L1


def _one_per_slot() -> list[dict]:
    """The first development-set conversation of each attribute and of each other family (the held-out set stays
    a measurement only)."""
    picked: dict[str, dict] = {}
    for r in ow.load(ow.DEV):
        e = r["expect"]
        key = f"attribute:{e['attribute']}" if e["slot"] == "attribute" else r["family"]
        if key in ("attribute_of_switched_volume",):
            continue
        if e["slot"] == "attribute" and r["family"] == "attribute_after_small_talk" and "attribute:held" not in picked:
            picked["attribute:held"] = r  # an attribute asked two turns after the product, small talk between
            continue
        picked.setdefault(key, r)
    return list(picked.values())[:12]


CONVERSATIONS = _one_per_slot()


@pytest.mark.parametrize("conv", CONVERSATIONS, ids=[f"{c['family']}-{c['expect'].get('attribute', c['expect']['slot'])}"
                                                     for c in CONVERSATIONS])
async def test_the_last_answer_addresses_the_item_in_play(client, conv):
    session = f"e2e-state-{uuid.uuid4().hex[:8]}"
    reply = None
    for turn in conv["turns"]:
        reply = await client.chat(turn, session_id=session, customer_id=conv["customer_id"], timeout=30.0)
    assert ow.judge(conv, reply.answer, list(reply.cards)), (conv["turns"], conv["expect"], reply.answer)


def test_the_conversations_cover_every_slot():
    slots = {c["expect"]["slot"] for c in CONVERSATIONS}
    attributes = {c["expect"]["attribute"] for c in CONVERSATIONS if c["expect"]["slot"] == "attribute"}
    assert slots == {"attribute", "volume", "author", "order_id"} and len(attributes) == 7
    assert any(len(c["turns"]) >= 3 and c["expect"]["slot"] == "order_id" for c in CONVERSATIONS)
    assert any(len(c["turns"]) >= 3 and c["expect"]["slot"] == "attribute" for c in CONVERSATIONS)
    assert len(CONVERSATIONS) <= 12
