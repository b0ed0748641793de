"""Retrieval training/evaluation triples (``triples/{train,test}.jsonl``): query, positive doc, HARD negative.

Queries are phrased the way customers ask about one product, review or policy section. Negatives are
chosen to be confusable with the positive: the same series at another volume, the same volume in another
edition (only when the query names the edition), the same author's other series, the product page
instead of the reviews, or another section of the same policy topic.

The test split uses query templates (and policy phrasings) that never appear in train, so retrieval
scores on it measure generalisation to new phrasings.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Callable, Sequence

from model_repository.datagen.documents import policy_doc_id, product_doc_id, review_doc_id

N_TRAIN = 4000
N_TEST = 600
HOLDOUT_FRACTION = 0.25
KIND_WEIGHTS = {"volume": 0.34, "edition": 0.13, "box_set": 0.06, "review": 0.2, "policy": 0.27}

# English tankobon with a volume number; the query names series + volume only.
VOLUME_TEMPLATES = (
    "who draws vol {v} of {series}?",
    "who is the mangaka for {series} volume {v}",
    "what happens in {series} vol {v}",
    "{series} vol {v} summary",
    "how many pages is {series} volume {v}",
    "which chapters are in {series} vol {v}",
    "is {series} v{v} in stock",
    "release date of {series} volume {v}",
    "how much does {series} book {v} cost",
    "what arc is {series} volume {v} part of",
    "is {series} #{v} rated teen or mature",
    "publisher of {series} vol {v}",
    "tell me about volume {v} of {series}",
    "which volume of {series} has chapters {c0} to {c1}",
    "{series} volume {v} paperback english",
    "plot of {series} book {v}?",
    "is volume {v} of {series} available",
    "when did {series} vol. {v} come out",
    "{series} {v} price",
    "what's {series} volume {v} about",
)
# Any edition with a volume; the query names the edition (digital, a language, omnibus).
EDITION_TEMPLATES = (
    "is there a {ed} of {series} vol {v}",
    "{series} vol {v} {ed}",
    "price of the {ed} of {series} volume {v}",
    "what's in the {ed} of {series} vol {v}",
    "do you have {series} volume {v} as a {ed}",
    "{ed} {series} {v} release date",
    "how many pages is the {series} {v} {ed}",
    "is the {ed} of {series} book {v} in stock",
)
BOX_TEMPLATES = (
    "is the {series} box set in english",
    "what comes with the {series} complete box set",
    "how many volumes are in the {series} box set",
    "{series} box set price",
    "does the {series} box set include extras like a poster",
    "is the complete {series} box set in stock",
    "{series} boxset all volumes",
    "when was the {series} box set released",
)
REVIEW_TEMPLATES = (
    "what do readers say about {series} vol {v}",
    "reviews for {series} volume {v}",
    "is {series} vol {v} any good? ratings",
    "{series} v{v} reader opinions",
    "how is {series} volume {v} rated",
    "do people like {series} book {v}",
    "complaints about {series} vol {v}",
    "what did fans think of volume {v} of {series}",
    "{series} {v} review summary",
    "is {series} volume {v} worth it according to reviewers",
    "average rating of {series} vol. {v}",
    "what do people criticize in {series} volume {v}",
)
# policy_id -> phrasings (the policy ids come from policies.py)
POLICY_QUERIES: dict[str, tuple[str, ...]] = {
    "pricing-price_match": (
        "do you price match", "can you match a lower price from another store", "price match policy",
        "another shop sells this volume cheaper", "will you match a competitor price", "price match after I ordered",
        "do you match marketplace sellers", "how do I ask for a price match"),
    "pricing-coupons": (
        "my coupon code doesn't work", "can I use two promo codes", "does the coupon stack with membership discount",
        "why is my discount code invalid", "add a coupon after ordering", "promo code on a gift card",
        "minimum order for coupon", "how many coupons per order"),
    "pricing-sales": (
        "item went on sale after I bought it", "price dropped right after delivery", "do you have a sale now",
        "bundle discount for a whole series", "buy 3 volumes discount", "refund the difference on a sale price",
        "do sale prices combine with membership", "when are your sales"),
    "pricing-price_changes": (
        "why did the price change", "price went up after I added it to cart", "which price do I pay if it changes",
        "is digital cheaper than print", "price on my confirmation is different", "do prices change often",
        "will I be charged the new price", "price changed before shipping"),
    "shipping-standard": (
        "how much is standard shipping", "is shipping free over 35 dollars", "how long does standard shipping take",
        "do you ship to po boxes", "shipping time to alaska", "minimum order for free shipping",
        "what does shipping cost on a $20 order", "how are box sets packed for shipping"),
    "shipping-expedited": (
        "how much is expedited shipping", "can I get overnight delivery", "2 day shipping price",
        "order by what time for next day delivery", "is express shipping available for pre-orders",
        "fastest shipping option", "overnight shipping cost", "do members get cheaper expedited shipping"),
    "shipping-international": (
        "do you ship to canada", "international shipping cost", "who pays customs duties",
        "how long does shipping to the uk take", "free international shipping threshold",
        "do you ship to japan", "what happens if I refuse a package because of import tax",
        "which countries do you deliver to"),
    "shipping-processing": (
        "how long until my order ships", "do you ship on weekends", "when do I get a tracking number",
        "why did my order come in two boxes", "which carriers do you use", "tracking number not working yet",
        "how many days to process an order", "do orders ship on holidays"),
    "shipping-holidays": (
        "order deadline for christmas delivery", "can I change my shipping address after ordering",
        "last day to order for delivery before december 24", "redirect a package to a new address",
        "what happens if a package is undeliverable", "holiday shipping cutoff for express",
        "how late can I order overnight before christmas", "wrong address on my order can I fix it"),
    "returns-window": (
        "how many days do I have to return a book", "return policy for unopened box sets",
        "how do I start a return", "is there a fee for returning something", "can I return a book I read",
        "30 day return policy details", "how much is the return label", "can I ship a return myself"),
    "returns-damaged": (
        "my book arrived damaged what do I do", "received the wrong volume", "missing pages in my manga",
        "how long do I have to report a damaged item", "do I need to send back a damaged book",
        "misprinted manga replacement", "do you need a photo of the damage", "wrong item sent to me"),
    "returns-refund_timing": (
        "how long do refunds take", "when will my refund show up on my card", "store credit instead of refund",
        "is shipping refunded when I return", "refund processing time", "bonus for choosing store credit",
        "bank still hasn't posted my refund", "do I get my original shipping back"),
    "returns-exchanges": (
        "can I exchange a volume for a different one", "exchange for a different language edition",
        "is there a fee to exchange", "swap a book for a cheaper one", "how do exchanges work",
        "exchange a damaged book for free", "price difference on an exchange", "exchange time limit"),
    "returns-non_returnable": (
        "can I return a digital manga", "are gift cards refundable", "can I return a pre-order poster",
        "what can't be returned", "return an opened box set", "final sale items return",
        "refund an ebook I downloaded", "are bonus items returnable"),
    "payment-methods": (
        "what payment methods do you take", "do you accept paypal", "can I pay with apple pay",
        "do you accept bitcoin", "buy now pay later afterpay", "can I use two payment methods",
        "do you take american express", "is cash on delivery possible"),
    "payment-charging": (
        "when is my card charged", "why was I charged twice for one order", "are pre-orders charged upfront",
        "authorization hold on my card", "do you charge when I order or when it ships",
        "prices in us dollars", "why were there two charges for split packages", "when does the charge go through"),
    "payment-gift_cards": (
        "do gift cards expire", "gift card amounts", "can I cash out a gift card", "store credit on digital books",
        "are there fees on gift cards", "what can I buy with store credit", "max gift card value",
        "can I use a gift card on ebooks"),
    "payment-declines": (
        "my card was declined", "is my card number stored safely", "what happens if payment fails",
        "order cancelled because payment failed", "do you store credit card numbers",
        "someone asked for my card number in chat", "update payment method after decline",
        "how many days to fix a failed payment"),
    "payment-tax_currency": (
        "do you charge sales tax", "foreign transaction fee", "what currency are prices in",
        "where do I find my receipt", "add a tax id to my invoice", "tax exempt for schools",
        "is tax charged on digital manga", "paying with a european card"),
    "membership-plans": (
        "how much is manga club premium", "annual membership price", "is there a free trial",
        "student membership price", "does membership auto renew", "switch from monthly to yearly",
        "how long is the trial", "cheapest membership plan"),
    "membership-benefits": (
        "what do premium members get", "member discount percentage", "do members get free shipping",
        "early access to box sets for members", "does the member discount stack with coupons",
        "premium perks", "members expedited shipping price", "is the 10% off on all manga"),
    "membership-points": (
        "how do manga points work", "how many points per dollar", "redeem points for a discount",
        "do points expire", "do premium members earn more points", "what are 100 points worth",
        "lose points after refund", "points value"),
    "membership-cancel": (
        "how do I cancel premium", "refund for annual membership", "can I pause my membership",
        "what happens to benefits after cancelling", "cancel manga club", "pause monthly plan",
        "annual membership refund window", "stop auto renewal"),
    "membership-gifting": (
        "can I gift a membership", "gift membership price", "share premium with my partner",
        "transfer points to another account", "does a gift membership renew",
        "gift membership for someone already a member", "redeem a gift membership code",
        "family sharing for premium"),
    "preorders-how_it_works": (
        "how do pre-orders work", "how far ahead can I pre-order", "limit on pre-order copies",
        "when do digital pre-orders arrive", "do pre-orders arrive on release day",
        "what if a limited edition sells out before release", "pre-order max quantity",
        "when is a digital pre-order charged"),
    "preorders-price_guarantee": (
        "price drops after I pre-order", "pre-order price guarantee", "coupon on a pre-order",
        "add a promo code after pre-ordering", "do I pay the lower price if it goes on sale",
        "lowest price guarantee for pre-orders", "pre-order price protection", "can I use a discount code on pre-orders"),
    "preorders-cancel_delays": (
        "cancel a pre-order", "release date delayed what happens to my pre-order",
        "fee to cancel a pre-order", "publisher cancelled a book I pre-ordered",
        "will I be charged if the release is cancelled", "pre-order pushed back",
        "how to cancel an upcoming release", "delayed manga pre-order"),
    "preorders-bonuses": (
        "pre-order bonus postcard", "are pre-order bonuses guaranteed", "can I return a pre-order bonus",
        "do bonuses ship with the book", "pre-order extras like acrylic stands", "bonus ran out",
        "exchange a pre-order bonus", "what pre-order bonuses do you offer"),
    "preorders-shipping": (
        "do pre-orders ship with the rest of my order", "ship everything together with a pre-order",
        "free shipping threshold with pre-orders", "change address on a pre-order",
        "pre-order shipping speed", "why did my pre-order ship separately",
        "does my whole order wait for the pre-order", "pre-order and in-stock item in one order"),
}


def _series_phrase(rng: random.Random, name: str) -> str:
    return name.lower() if rng.random() < 0.4 else name


def _edition_phrase(rng: random.Random, p: dict[str, Any]) -> str:
    if p["format"] == "digital":
        return rng.choice(("digital edition", "ebook", "digital version", "e-book"))
    if p["format"] == "omnibus":
        return rng.choice(("omnibus", "omnibus edition", "3-in-1 omnibus"))
    return rng.choice((f"{p['language']} edition", f"{p['language']} translation", f"{p['language']} version"))


def _split_templates(rng: random.Random, templates: Sequence[str]) -> tuple[list[str], list[str]]:
    ids = list(templates)
    rng.shuffle(ids)
    n_test = max(2, round(len(ids) * HOLDOUT_FRACTION))
    return sorted(ids[n_test:]), sorted(ids[:n_test])


class _Catalog:
    def __init__(self, products: Sequence[dict[str, Any]]) -> None:
        self.by_series: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.series_by_author: dict[str, set[str]] = defaultdict(set)
        for p in products:
            self.by_series[p["series"]].append(p)
            self.series_by_author[p["author"]].add(p["series"])
        self.tankobon = [p for p in products if p["format"] == "tankobon" and p["language"] == "English"]
        self.editions = [p for p in products if p["volume"] is not None and
                         (p["format"] in ("digital", "omnibus") or p["language"] != "English")]
        self.box_sets = [p for p in products if p["format"] == "box_set"]

    def siblings(self, p: dict[str, Any], **same: Any) -> list[dict[str, Any]]:
        return [q for q in self.by_series[p["series"]] if q["asin"] != p["asin"]
                and all(q[k] == v for k, v in same.items())]

    def same_author_other_series(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        return [q for s in sorted(self.series_by_author[p["author"]] - {p["series"]}) for q in self.by_series[s]
                if q["format"] == p["format"] and q["volume"] == p["volume"]]


def _volume_triple(rng, cat: _Catalog, templates) -> tuple[str, str, str] | None:
    p = rng.choice(cat.tankobon)
    v = p["volume"]
    chapters = p["description"].split("collects chapters ")[-1].split(" ")[0].split("-")
    query = rng.choice(templates).format(series=_series_phrase(rng, p["series"]), v=v,
                                         c0=chapters[0], c1=chapters[-1])
    negs = cat.siblings(p, format="tankobon", language="English")
    near = [q for q in negs if abs(q["volume"] - v) <= 2]
    pool = near or negs
    if rng.random() < 0.2:
        pool = cat.same_author_other_series(p) or pool
    if not pool:
        return None
    return query, product_doc_id(p["asin"]), product_doc_id(rng.choice(pool)["asin"])


def _edition_triple(rng, cat: _Catalog, templates) -> tuple[str, str, str] | None:
    p = rng.choice(cat.editions)
    query = rng.choice(templates).format(series=_series_phrase(rng, p["series"]), v=p["volume"],
                                         ed=_edition_phrase(rng, p))
    # Same volume in another edition first (the query names the edition), else another volume of it.
    pool = [q for q in cat.siblings(p) if q["volume"] == p["volume"] and q["format"] != "box_set"
            and (q["format"], q["language"]) != (p["format"], p["language"])]
    if not pool or rng.random() < 0.3:
        pool = cat.siblings(p, format=p["format"], language=p["language"]) or pool
    if not pool:
        return None
    return query, product_doc_id(p["asin"]), product_doc_id(rng.choice(pool)["asin"])


def _box_triple(rng, cat: _Catalog, templates) -> tuple[str, str, str] | None:
    p = rng.choice(cat.box_sets)
    query = rng.choice(templates).format(series=_series_phrase(rng, p["series"]))
    pool = [q for q in cat.siblings(p) if q["format"] == "omnibus" or q["volume"] in (1, 2)]
    if rng.random() < 0.3:
        pool = [q for s in sorted(cat.series_by_author[p["author"]] - {p["series"]})
                for q in cat.by_series[s] if q["format"] == "box_set"] or pool
    if not pool:
        return None
    return query, product_doc_id(p["asin"]), product_doc_id(rng.choice(pool)["asin"])


def _review_triple(rng, cat: _Catalog, templates) -> tuple[str, str, str] | None:
    p = rng.choice(cat.tankobon)
    query = rng.choice(templates).format(series=_series_phrase(rng, p["series"]), v=p["volume"])
    if rng.random() < 0.35:  # the product page of the same item is not the reviews
        return query, review_doc_id(p["asin"]), product_doc_id(p["asin"])
    pool = cat.siblings(p, format="tankobon", language="English")
    if not pool:
        return None
    return query, review_doc_id(p["asin"]), review_doc_id(rng.choice(pool)["asin"])


def _policy_triple(rng, queries: dict[str, list[str]]) -> tuple[str, str, str]:
    pid = rng.choice(sorted(queries))
    topic = pid.split("-")[0]
    others = [q for q in sorted(POLICY_QUERIES) if q.startswith(topic + "-") and q != pid]
    query = rng.choice(queries[pid])
    r = rng.random()
    if r < 0.15:
        query = rng.choice(("hi, ", "quick question: ", "hey ", "um ")) + query
    elif r < 0.3:
        query = query + rng.choice(("?", "??", " please", " thanks"))
    return query, policy_doc_id(pid), policy_doc_id(rng.choice(others))


def generate_triples(
    seed: int, products: Sequence[dict[str, Any]], policy_ids: Sequence[str]
) -> dict[str, list[dict[str, str]]]:
    """``{"train": [...], "test": [...]}``, each sorted; test uses held-out templates and phrasings."""
    missing = set(POLICY_QUERIES) - set(policy_ids)
    if missing:
        raise ValueError(f"policy queries refer to unknown policy ids {sorted(missing)}; this is a bug")
    cat = _Catalog(products)
    split_rng = random.Random(f"{seed}:triples:split")
    template_sets = {kind: _split_templates(split_rng, t) for kind, t in (
        ("volume", VOLUME_TEMPLATES), ("edition", EDITION_TEMPLATES), ("box_set", BOX_TEMPLATES),
        ("review", REVIEW_TEMPLATES))}
    policy_sets: tuple[dict[str, list[str]], dict[str, list[str]]] = ({}, {})
    for pid in sorted(POLICY_QUERIES):
        train_q, test_q = _split_templates(split_rng, POLICY_QUERIES[pid])
        policy_sets[0][pid], policy_sets[1][pid] = train_q, test_q
    makers: dict[str, Callable[..., tuple[str, str, str] | None]] = {
        "volume": _volume_triple, "edition": _edition_triple, "box_set": _box_triple, "review": _review_triple}
    out: dict[str, list[dict[str, str]]] = {}
    for split_idx, (split, n) in enumerate((("train", N_TRAIN), ("test", N_TEST))):
        rng = random.Random(f"{seed}:triples:{split}")
        kinds, weights = zip(*KIND_WEIGHTS.items())
        seen: set[tuple[str, str, str]] = set()
        rows: list[dict[str, str]] = []
        attempts = 0
        while len(rows) < n and attempts < n * 20:
            attempts += 1
            kind = rng.choices(kinds, weights=weights)[0]
            if kind == "policy":
                triple = _policy_triple(rng, policy_sets[split_idx])
            else:
                triple = makers[kind](rng, cat, template_sets[kind][split_idx])
            if triple is None or triple in seen or triple[1] == triple[2]:
                continue
            seen.add(triple)
            rows.append({"query": triple[0], "positive_doc_id": triple[1], "negative_doc_id": triple[2]})
        rows.sort(key=lambda r: (r["query"], r["positive_doc_id"], r["negative_doc_id"]))
        out[split] = rows
    return out


def held_out_templates(seed: int) -> dict[str, tuple[list[str], list[str]]]:
    """kind -> (train templates, test templates); exposed for the no-leakage test."""
    split_rng = random.Random(f"{seed}:triples:split")
    sets = {kind: _split_templates(split_rng, t) for kind, t in (
        ("volume", VOLUME_TEMPLATES), ("edition", EDITION_TEMPLATES), ("box_set", BOX_TEMPLATES),
        ("review", REVIEW_TEMPLATES))}
    for pid in sorted(POLICY_QUERIES):
        sets[f"policy:{pid}"] = _split_templates(split_rng, POLICY_QUERIES[pid])
    return sets
