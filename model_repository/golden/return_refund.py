"""Writes return and refund asks: return policy, damaged items, returning an order, PII, with another ask."""

from __future__ import annotations

from model_repository.golden.record import GoldenRecord
from model_repository.golden.writers import Draws, Writer, carried_volume, new_record, phrase, policy_writer, with_typo

DAMAGED_REPORTS = ("{name} volume {vol} showed up with a torn cover. Can I get a replacement?",
                   "The copy of {name} vol {vol} I received has pages printed upside down.",
                   "My {name} #{vol} came with water damage all along the bottom edge. What are my options?",
                   "{name} volume {vol} arrived with the spine split. I'd like a new copy.")
JAPANESE_DAMAGED_REPORTS = ("届いた{ja}の{vol}巻、表紙が折れていました。交換できますか？", "{ja}の{vol}巻にページの抜けがありました")
ORDER_RETURN_ASKS = ("I'd like to send back everything in order {oid}. How do I do that?", "Can I return the books from order {oid}? I changed my mind.",
                     "Order {oid} arrived fine but I don't want it anymore. Can I return it?")
RETURN_AND_OTHER_ASKS = ("I want to return the books from {oid}, and where is my other order {oid2}?",
                         "Vol {vol} of {name} came damaged. Also, what does the {name} box set cost?")
DAMAGED_REPORTS_WITH_PII = ("Please refund my card {card}, the book from my last order was damaged.",
                            "Send the return label to {address}, my {name} vol {vol} came with a ripped cover.")


def damaged_report(draw: Draws) -> GoldenRecord:
    s, p = carried_volume(draw)
    msg = phrase(draw, DAMAGED_REPORTS, name=draw.name(s), vol=p["volume"])
    return new_record(draw, msg, "return_refund", "detailed").product(p, ()).policy("returns-damaged#report")


def japanese_damaged_report(draw: Draws) -> GoldenRecord:
    s, ja = draw.with_alias("ja")
    p = draw.volume(s)
    msg = phrase(draw, JAPANESE_DAMAGED_REPORTS, ja=ja, vol=p["volume"])
    return new_record(draw, msg, "return_refund").product(p, ()).policy("returns-damaged#report")


def order_return_ask(draw: Draws) -> GoldenRecord:
    o = draw.order(("delivered",))
    msg = phrase(draw, ORDER_RETURN_ASKS, oid=draw.order_text(o["order_id"]))
    r = new_record(draw, msg, "return_refund").names_order(o)
    r.must_state.append([o["order_id"]])
    return r.say(f"You can start a return for order {o['order_id']} from Your Orders.").policy("returns-window#window")


def typo_damaged_report(draw: Draws) -> GoldenRecord:
    return with_typo(damaged_report(draw), draw)


def return_and_other_ask(draw: Draws) -> GoldenRecord:
    s, p = carried_volume(draw)
    tmpl = draw.pick(RETURN_AND_OTHER_ASKS)
    if "{oid2}" in tmpl:
        o1, o2 = draw.order(("delivered",)), draw.order(("shipped", "processing", "out_for_delivery"))
        msg = draw.fill(tmpl, oid=o1["order_id"], oid2=o2["order_id"])
        return new_record(draw, msg, "return_refund", "multi_intent").policy("returns-window#window").order(o2)
    box = draw.store.product(s["series"], None, "box_set")
    if box is None:
        return None  # type: ignore[return-value]
    msg = draw.fill(tmpl, name=draw.name(s), vol=str(p["volume"]))
    return new_record(draw, msg, "return_refund", "multi_intent").policy("returns-damaged#report").product(box, ["price"])


def damaged_report_with_pii(draw: Draws) -> GoldenRecord:
    s, p = carried_volume(draw)
    tmpl = draw.pick(DAMAGED_REPORTS_WITH_PII)
    card, address = draw.card(), draw.address()
    msg = draw.fill(tmpl, card=card, address=address, name=draw.name(s), vol=str(p["volume"]))
    r = new_record(draw, msg, "return_refund", "detailed").policy("returns-damaged#report")
    if "{card}" in tmpl:
        return r.redact(["CARD"], [card, card.replace(" ", "")])
    return r.product(p, ()).redact(["ADDRESS"], [address])


#: (writer name, writer, how many records); the name seeds the writer's random stream
WRITERS: list[tuple[str, Writer, int]] = [
    ("policy", policy_writer("return_refund", "ask"), 9),
    ("numbers", policy_writer("return_refund", "numbers", "numbers"), 4),
    ("ja", policy_writer("return_refund", "ja"), 3),
    ("romaji", policy_writer("return_refund", "romaji", "romaji"), 2),
    ("slang", policy_writer("return_refund", "slang", "slang"), 1),
    ("fragment", policy_writer("return_refund", "fragment", "fragment"), 2),
    ("damaged", damaged_report, 6),
    ("damaged_ja", japanese_damaged_report, 2),
    ("order", order_return_ask, 4),
    ("typo", typo_damaged_report, 3),
    ("multi", return_and_other_ask, 5),
    ("pii", damaged_report_with_pii, 2),
]
