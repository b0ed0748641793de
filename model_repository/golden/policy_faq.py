"""Writes policy questions (shipping, payment, membership, pre-orders) in every register, or with a product ask."""

from __future__ import annotations

from model_repository.golden.policy_aspects import ASPECTS, aspects_for
from model_repository.golden.record import GoldenRecord
from model_repository.golden.writers import Draws, Writer, carried_volume, new_record, policy_writer, with_typo

POLICY_AND_PRODUCT_ASKS = ("{ask} Also, is {name} volume {vol} in stock?", "{ask} And how much is {name} vol {vol}?")


def policy_and_product_ask(draw: Draws) -> GoldenRecord:
    key = draw.pick(aspects_for("policy_faq", "clause"))
    s, p = carried_volume(draw)
    ask = draw.fill(draw.pick(ASPECTS[key].clause))
    tmpl = draw.pick(POLICY_AND_PRODUCT_ASKS)
    msg = draw.fill(tmpl, ask=ask[0].upper() + ask[1:] + "?", name=draw.name(s), vol=str(p["volume"]))
    r = new_record(draw, msg, "policy_faq", "multi_intent").policy(key)
    return r.product(p, ["stock"] if "in stock" in tmpl else ["price"])


def typo_policy_ask(draw: Draws) -> GoldenRecord:
    return with_typo(policy_writer("policy_faq", "ask")(draw), draw)


#: (writer name, writer, how many records); the name seeds the writer's random stream
WRITERS: list[tuple[str, Writer, int]] = [
    ("ask", policy_writer("policy_faq", "ask"), 13),
    ("numbers", policy_writer("policy_faq", "numbers", "numbers"), 6),
    ("ja", policy_writer("policy_faq", "ja"), 7),
    ("romaji", policy_writer("policy_faq", "romaji", "romaji"), 3),
    ("slang", policy_writer("policy_faq", "slang", "slang"), 3),
    ("fragment", policy_writer("policy_faq", "fragment", "fragment"), 4),
    ("typo", typo_policy_ask, 3),
    ("multi", policy_and_product_ask, 5),
]
