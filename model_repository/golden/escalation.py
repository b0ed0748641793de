"""Writes escalations: asks for a human, complaints, security reports, orders gone wrong, PII, with a refund ask."""

from __future__ import annotations

from typing import Sequence

from model_repository.golden.record import GoldenRecord
from model_repository.golden.writers import Draws, Writer, new_record, phrase, with_typo

HUMAN_ASKS = ("I'd like to speak with an actual person, please.", "Is there a live person I can chat with instead of a bot?",
              "Please get me someone from your support team.", "I need a real customer service rep for this.",
              "Can I talk to somebody who works there?", "Hand me over to a person, this bot isn't cutting it.")
COMPLAINTS = ("This is the worst shopping experience I've had. I want to file an official complaint.",
              "Three emails and no reply. I'm disputing the charge with my bank unless someone contacts me.",
              "I'm going to report your store to consumer protection if this isn't fixed today.",
              "I want compensation for the ruined gift and I want to hear it from a manager.")
SECURITY_REPORTS = ("There are two orders on my account I never placed. I think I've been hacked.",
                    "Someone changed the email on my account without my permission.",
                    "I want all my personal data deleted from your systems under privacy law.",
                    "The box cutter blade was left inside my package and I cut my hand.",
                    "My card was billed by your store for something I never bought.")
ORDER_ESCALATIONS = ("Order {oid} has been a disaster from start to finish. Get me a supervisor.",
                     "I've been chasing {oid} for weeks. I want to speak to a human about it now.")
JAPANESE_HUMAN_ASKS = ("オペレーターの方に代わってもらえますか", "スタッフの人と直接話したいです", "不正利用されたみたいなので担当者と話したい",
                       "何度問い合わせても返事がない。上の人を出して")
ROMAJI_HUMAN_ASKS = ("tantousha to chokusetsu hanashitai desu", "hito to hanasasete kudasai, onegai")
ESCALATIONS_WITH_PII = ("Call me back at {phone}, I need a human about a billing problem.", "I want a manager to email me at {email} about my complaint.",
                        "Someone used my card {card} on your site. I need a person on this now.",
                        "My passport number is {passport}, DOB {dob}. Please have an agent verify my identity and unlock my account.")
ESCALATION_AND_REFUND_ASKS = ("My order {oid} arrived damaged, I want a refund AND I want to talk to a manager about it.",
                              "Where is {oid}? This is the third time I'm asking. Put me through to a human, and refund the shipping.")
TYPO_HUMAN_ASKS = ("I need to speak with a supervisor about a billing problem right away.",
                   "Please transfer me to someone in customer service.",
                   "Your assistant keeps misunderstanding me, I want a person.",
                   "Somebody please call me back about my account, it's urgent.")
SLANG_HUMAN_ASKS = ("bruh get me a real human", "no more bot pls, human?", "lemme talk to an actual person fr")


def escalation_writer(phrasings: Sequence[str], *tags: str) -> Writer:
    """Writes one of ``phrasings`` as a request the answer hands to a human."""
    def make(draw: Draws) -> GoldenRecord:
        return new_record(draw, draw.pick(phrasings), "escalation", "simple", *tags).escalate()
    return make


def order_escalation(draw: Draws) -> GoldenRecord:
    o = draw.order()
    return new_record(draw, phrase(draw, ORDER_ESCALATIONS, oid=o["order_id"]), "escalation").names_order(o).escalate()


def escalation_with_pii(draw: Draws) -> GoldenRecord:
    tmpl = draw.pick(ESCALATIONS_WITH_PII)
    email, email_plain = draw.email()
    vals = {"phone": draw.phone(), "email": email, "card": draw.card(), "passport": draw.passport(), "dob": draw.dob()}
    msg = draw.fill(tmpl, **vals)
    r = new_record(draw, msg, "escalation", "detailed").escalate()
    if "{phone}" in tmpl:
        return r.redact(["PHONE"], [vals["phone"]])
    if "{email}" in tmpl:
        return r.redact(["EMAIL"], [email] + ([email_plain] if email_plain else []))
    if "{card}" in tmpl:
        return r.redact(["CARD"], [vals["card"], vals["card"].replace(" ", "")])
    return r.redact(["PASSPORT", "DOB"], [vals["passport"], vals["dob"]])


def escalation_and_refund_ask(draw: Draws) -> GoldenRecord:
    o = draw.order()
    msg = phrase(draw, ESCALATION_AND_REFUND_ASKS, oid=o["order_id"])
    r = new_record(draw, msg, "escalation", "multi_intent").names_order(o).escalate()
    return r.also_asks("return_refund", *(["order_status"] if "Where is" in r.message else []))


def typo_human_ask(draw: Draws) -> GoldenRecord:
    return with_typo(escalation_writer(TYPO_HUMAN_ASKS)(draw), draw)


#: (writer name, writer, how many records); the name seeds the writer's random stream
WRITERS: list[tuple[str, Writer, int]] = [
    ("human", escalation_writer(HUMAN_ASKS), 5),
    ("complaint", escalation_writer(COMPLAINTS), 4),
    ("security", escalation_writer(SECURITY_REPORTS), 5),
    ("order", order_escalation, 3),
    ("ja", escalation_writer(JAPANESE_HUMAN_ASKS), 4),
    ("romaji", escalation_writer(ROMAJI_HUMAN_ASKS, "romaji"), 2),
    ("pii", escalation_with_pii, 5),
    ("multi", escalation_and_refund_ask, 4),
    ("typo", typo_human_ask, 3),
    ("slang", escalation_writer(SLANG_HUMAN_ASKS, "slang"), 2),
]
