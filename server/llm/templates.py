"""The template tier: grounded answers composed from verified facts, for every intent.

Every product, price, stock state, date, order id and policy figure in a template answer is copied from the
store's data the pipeline looked up (``Facts``): catalog rows resolved by ``server/retrieval/entities.py``, the
order row for an id the customer gave, and sentences quoted from the retrieved policy chunks. Nothing is
invented: with no fact to state, the answer asks for what is missing (a title, an order number) or says what
the store does not carry.

Used directly for the intents routed to "template" (the default for every intent: the golden-set eval shows
it beats the local LLM tier, see docs/answers-and-evaluation.md) and as the last fallback of every other route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Mapping, Sequence

from server.ids import find_order_id, find_order_ids
from server.llm.base import LLMAnswer, LLMRequest
from server.retrieval import asks
from server.retrieval.base import Product, ScoredChunk
from server.retrieval.entities import Resolution
from server.retrieval.query import expand as expand_query

MODEL = "template"

BLOCKED = (
    "I can't help with that request. I can help you find manga, check prices and stock, "
    "track an order, or explain our shipping and return policies."
)
UNAVAILABLE = (
    "Sorry, I can't look that up right now. Please try again in a moment, "
    "or ask for a human agent and we'll take it from there."
)
NOT_ON_ACCOUNT = "I couldn't find an order {order} on your account. Could you double-check the number?"
SIGN_IN = ("I can only look up orders for a signed-in customer. Please sign in to the account that placed {orders} "
           "and ask me again.")
ASK_ORDER_ID = "I can check that for you. What's your order number? You'll find it in your order confirmation email."
NOT_YOUR_ORDER = (
    "I can only share order details with the customer who placed the order, so I can't look up {orders} for you. "
    "If it's your order, sign in to the account that placed it and ask me again."
)
HUMAN_HANDOFF = (
    "I'm sorry for the trouble. I'm handing this conversation to a human agent now; "
    "they will see everything so far, so you won't need to repeat yourself."
)
_FORMAT_NAMES = {"tankobon": "paperback", "omnibus": "omnibus", "box_set": "box set", "digital": "digital"}


@dataclass(frozen=True)
class Facts:
    """What the pipeline already knows, handed to the answer tiers."""

    order_id: str | None = None
    #: the intent the answer addresses (``server/stages/entities.py``): the classifier's, unless the store's data
    #: says otherwise; "" = the request's intent
    intent: str = ""
    products: tuple[Product, ...] = ()  # what the customer asks about (resolved), or related picks
    resolution: Resolution | None = None  # how the products were resolved (not carried, fuzzy, volume asked)
    policies: tuple[ScoredChunk, ...] = ()  # the policy sections that answer the message, best first
    #: the end customer the call acts for ("" = anonymous) and the orders the message names, looked up on that
    #: customer's account only (None: no such order on the account -- unknown and someone else's read alike)
    customer_id: str = ""
    orders: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    #: asin -> the row's description / review summary (server/stages/entities.py; attribute questions: pages, rating)
    details: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: "more by <author>": the author whose other series ``products`` are (server/stages/entities.py)
    author: str = ""


__all__ = ["BLOCKED", "Facts", "TemplateTier", "UNAVAILABLE", "find_order_id"]

class TemplateTier:
    name = "template"
    model = MODEL

    async def generate(self, request: LLMRequest, facts: Facts | None = None) -> LLMAnswer:
        text, asins = compose(request, facts or Facts())
        return LLMAnswer(text=text, tier="template", model=MODEL, product_asins=tuple(asins))

    async def stream(self, request: LLMRequest, facts: Facts | None = None) -> AsyncIterator[str]:
        answer = await self.generate(request, facts)
        yield answer.text

    def blocked(self) -> LLMAnswer:
        return LLMAnswer(text=BLOCKED, tier="template", model=MODEL)


def compose(request: LLMRequest, facts: Facts) -> tuple[str, list[str]]:
    """(answer text, ASINs it names) for the intent the facts stage settled on; each part states only facts it
    was given.

    A second ask in the same message gets its own paragraph: a policy asked about next to a product or a
    recommendation, a product named or picks asked for next to a policy question or an order lookup; every
    order id given is looked up."""
    message = request.user_message
    intent = facts.intent or request.intent
    policies = facts.policies or tuple(request.context)
    if intent == "escalation":
        return _handoff(message, facts), []
    if intent == "chitchat":
        return _chitchat(message, facts), []
    if intent == "order_status":
        return _with_second_ask(_order(message, facts), message, facts)
    if intent in ("return_refund", "policy_faq"):
        return _policy_answer(message, intent, facts, policies)
    if intent == "recommendation":
        text, asins = _recommendation(message, facts)
        return _with_policy(text, message, policies), asins
    if intent in ("product_question", "price_deal"):
        return _product_or_pricing(message, intent, facts, policies)
    return _unknown(message, facts, policies)


def _handoff(message: str, facts: Facts) -> str:
    """The handoff, with what the agent picks up: the orders and the title the customer named."""
    notes = [_order(message, facts)] if facts.order_id or find_order_id(message) or asks.SOMEONE_ELSES_ORDER.search(message) else []
    res = facts.resolution
    if res is not None and res.matched_by in ("name", "fuzzy") and facts.products:
        notes.append(f"I've noted {facts.products[0].title} for them.")
    return " ".join([HUMAN_HANDOFF, *notes])


def _with_second_ask(text: str, message: str, facts: Facts) -> tuple[str, list[str]]:
    """An order answer, then the product or the picks asked for in the same message, in their own paragraph."""
    res = facts.resolution
    if asks.picks_asked(message, res is not None and res.matched_by in ("name", "fuzzy")) and facts.products:
        more, asins = _recommendation(message, facts)
    elif res is not None and (res.not_ours or (res.matched_by in ("name", "fuzzy") and facts.products)):
        ask = "price_deal" if asks.PRICING.search(message) or "how much" in message.lower() else "product_question"
        more, asins = _product_or_pricing(message, ask, facts, ())
    else:
        return text, []
    return text + "\n\n" + more, asins


def _policy_answer(
    message: str, intent: str, facts: Facts, policies: Sequence[ScoredChunk],
) -> tuple[str, list[str]]:
    text = _policy(message, policies) or _no_policy()
    order_id = facts.order_id or find_order_id(message)
    if intent == "return_refund" and order_id:
        text = _order(message, facts) + " " + text
    res = facts.resolution
    if intent == "return_refund" and res is not None and res.products and res.matched_by in ("name", "fuzzy"):
        lead = "Sorry about your copy of {}." if asks.DAMAGE.search(message) else "Here's how returns work for {}."
        return lead.format(res.products[0].title) + " " + text, []
    lead, asins = "", []
    if res is not None and res.not_ours:
        lead = _decline_res(res)
    elif asks.picks_asked(message, res is not None and res.matched_by in ("name", "fuzzy")) and facts.products:
        lead, asins = _recommendation(message, facts)
    elif res is not None and res.matched_by in ("name", "fuzzy") and facts.products:
        lead, asins = _product_or_pricing(message, "product_question", facts, ())
    # the product part first, the policy in its own paragraph (a policy amount never reads as a product price)
    return (lead + "\n\n" + text if lead else text), asins


def _with_policy(text: str, message: str, policies: Sequence[ScoredChunk], *, pricing: bool = False) -> str:
    """``text``, then the policy the message also asks about in its own paragraph (for a price question also a
    pricing rule: bundles, sales, price match)."""
    asked = asks.POLICY.search(message) or (pricing and asks.PRICING.search(message))
    policy = _policy(message, policies) if asked else ""
    return text + "\n\n" + policy if policy else text


# ---------------------------------------------------------------------------------------- per intent
def _chitchat(message: str, facts: Facts = Facts()) -> str:
    low = message.lower()
    res = facts.resolution
    if res is not None and res.series and res.matched_by in ("name", "fuzzy") and not asks.SMALL_TALK.search(message):
        # fan talk about a title the store carries: answer in kind, and offer what the store can do with it
        return (f"Sounds like {res.series} really stayed with you! If you'd like, I can check the next volume "
                f"or suggest something similar.")
    words = set(re.findall(r"[a-z]+", low))
    if words & {"thanks", "thank", "thx", "ty", "cheers", "arigatou", "arigato"} or "ありがと" in message or "助かり" in message:
        return "You're welcome! Is there anything else I can help you find?"
    if words & {"bye", "goodbye", "later", "cya"} or "またね" in message or "さようなら" in message:
        return "Thanks for stopping by. Happy reading!"
    if words & {"bot", "robot", "ai", "human", "real"} or "ロボット" in message:
        return ("I'm MangaAssist, the store's automated assistant. I can help you find manga, check prices and "
                "stock, track an order, or explain our policies, and I can hand you to a human agent any time.")
    return ("Hi! I'm MangaAssist. I can help you find manga, check prices and stock, "
            "track an order, or explain our shipping and return policies.")


def _order(message: str, facts: Facts) -> str:
    """Each order the customer gave, as found on their account; with none given, ask for it; someone else's,
    refused. An id not on the caller's account reads exactly like an unknown one: nothing about it is said."""
    order_ids = find_order_ids(message) or ([facts.order_id] if facts.order_id else [])
    if asks.SOMEONE_ELSES_ORDER.search(message):
        return NOT_YOUR_ORDER.format(orders=" or ".join(order_ids) or "that order")
    if not order_ids:
        return ASK_ORDER_ID
    if not facts.customer_id:
        return SIGN_IN.format(orders=" or ".join(order_ids))
    out = []
    for order_id in order_ids:
        order = facts.orders.get(order_id)
        out.append(order_text(order_id, order) if order is not None else NOT_ON_ACCOUNT.format(order=order_id))
    return " ".join(out)


def order_text(order_id: str, order: dict[str, Any]) -> str:
    status = str(order.get("status", "")).lower()
    carrier = order.get("carrier") or "the carrier"
    tracking = order.get("tracking_number")
    eta = order.get("eta")
    track = f" (tracking number {tracking})" if tracking else ""
    text = {
        "processing": f"Your order {order_id} is being prepared and hasn't shipped yet.",
        "shipped": f"Your order {order_id} has shipped with {carrier}{track}.",
        "out_for_delivery": f"Your order {order_id} is out for delivery with {carrier}{track}.",
        "delivered": f"Your order {order_id} was delivered by {carrier}{track}.",
        "cancelled": f"Your order {order_id} was cancelled.",
    }.get(status, f"Your order {order_id} has status '{status or 'unknown'}'.")
    if eta and status in ("processing", "shipped", "out_for_delivery"):
        text += f" Estimated delivery: {eta}."
    return text


def _product_or_pricing(message: str, intent: str, facts: Facts, context: Sequence[ScoredChunk]) -> tuple[str, list[str]]:
    res = facts.resolution or Resolution(products=facts.products)
    parts: list[str] = []
    asins: list[str] = []
    if res.not_ours:
        parts.append(_decline_res(res))
        if facts.products and res.not_carried:
            picks = facts.products[:2]
            parts.append("From our catalog you might like " + " or ".join(p.title for p in picks) + ".")
            asins += [p.asin for p in picks]
        return " ".join(parts), asins
    if not facts.products:
        asks_rule = asks.PRICING.search(message) or asks.POLICY.search(message) or asks.RULE_NOT_ORDER.search(message)
        policy = _policy(message, context) if asks_rule else ""
        if policy:
            return policy, []
        return _not_found(), []
    if res.matched_by == "fuzzy" and res.series:
        parts.append(f"Did you mean {res.series}?")
    main = facts.products[0]
    if res.series and res.volume_missing:
        parts.append(_volumes_line(res) + f" Volume {res.volume} isn't in our catalog.")
        return " ".join(parts), []
    if res.series and res.format and main.format != res.format:
        parts.append(f"We don't have a {_FORMAT_NAMES.get(res.format, res.format)} edition of {res.series}.")
    if res.series and res.language and main.language != res.language:
        parts.append(f"We don't have {res.series} in {res.language}.")
    parts.append(_product_line(main, message, intent))
    asins.append(main.asin)
    detail = _detail_lines(main, message, res, facts.details.get(main.asin))
    parts.extend(detail)
    others = [p for p in facts.products[1:3] if p.asin != main.asin]
    if others and intent == "price_deal":
        parts.append("Also: " + "; ".join(f"{p.title}: {_price(p)}, {_stock(p)}" for p in others) + ".")
        asins += [p.asin for p in others]
    # the policy in its own paragraph: a policy amount must never read as the product's price (the price
    # guardrail attaches a price to the product mentioned in the same paragraph)
    return _with_policy(" ".join(parts), message, context, pricing=intent == "price_deal"), asins


def _recommendation(message: str, facts: Facts) -> tuple[str, list[str]]:
    res = facts.resolution
    parts = []
    if res is not None and res.not_ours:
        parts.append(_decline_res(res))
    if not facts.products and facts.author:
        named = res.series if res is not None and res.series and not res.not_ours else "That"
        return f"{named} is the only series by {facts.author} we carry.", []
    if not facts.products:
        parts.append("Tell me a series or genre you enjoy and I'll suggest something similar from our catalog.")
        return " ".join(parts), []
    liked = res.series if res is not None and res.series and not res.not_ours else None
    picks = "; ".join(_pick(p) for p in facts.products)
    if facts.author:
        return f"Other series by {facts.author} we carry: {picks}.", [p.asin for p in facts.products]
    parts.append(f"If you liked {liked}, you might enjoy: {picks}." if liked else f"You might enjoy: {picks}.")
    return " ".join(parts), [p.asin for p in facts.products]


def _pick(p: Product) -> str:
    """One recommended product, every figure from its own catalog row -- the row its card is rendered from:
    the title (which names a non-default edition), then edition, price and stock right after it, so no figure
    stands nearer to another pick's title than to its own."""
    edition = " ".join(x for x in (p.language, _FORMAT_NAMES.get(p.format, p.format)) if x)
    line = f"{p.title} ({edition}, {_price(p)}, {_stock(p)})"
    if p.author:
        line += f" by {p.author}"
    return line + (f" ({', '.join(p.genres[:2])})" if p.genres else "")


def _unknown(message: str, facts: Facts, context: Sequence[ScoredChunk]) -> tuple[str, list[str]]:
    if facts.resolution is not None and facts.resolution.not_ours:
        return _decline_res(facts.resolution), []
    if facts.products:
        lines = [f"{p.title}: {_price(p)}, {_stock(p)}." for p in facts.products]
        return " ".join(lines), [p.asin for p in facts.products]
    policy = _policy(message, context)
    if policy:
        return policy, []
    return UNAVAILABLE, []


# ---------------------------------------------------------------------------------------- products
_ASKS = {
    "author": re.compile(r"\bauthor|mangaka|who (?:wrote|writes|draws|drew|made)|written by|作者|作家|誰", re.I),
    "publisher": re.compile(r"publish|出版", re.I),
    "release": re.compile(r"release|come out|coming out|out yet|when (?:is|does|will|was)|what date|\bdate\b|drop|pre-?order|発売|いつ", re.I),
    "volumes": re.compile(r"how many (?:volumes|books)|number of (?:volumes|books)|volumes (?:do you|in your|are there)|finished|complete[d]?\b|ongoing|still going|last volume|final volume|全何巻|完結|何巻", re.I),
    "rating": re.compile(r"age|rated|rating|kid|child|teens?\b|son|daughter|mature|gore|年齢|対象", re.I),
    "language": re.compile(r"english|japanese|spanish|french|german|italian|portuguese|translat|language|英語|日本語", re.I),
    "format": re.compile(r"hardcover|paperback|softcover|format|digital|ebook|omnibus|box set|edition|physical", re.I),
    "pages": re.compile(r"\bpages?\b|page count|how (?:long|thick)|ページ", re.I),
}
#: a page count and a readers' rating as the catalog's description / review summary state them
_PAGES = re.compile(r"runs (\d+) pages|(\d+)-page")
_STARS = re.compile(r"Average rating (\d(?:\.\d)?)/5 from (\d+) reviews")
def _product_line(p: Product, message: str, intent: str) -> str:
    if intent == "price_deal":
        return f"{p.title} is {_price(p)} and {_stock(p)}."
    bits = [x for x in (_FORMAT_NAMES.get(p.format, p.format), p.language) if x]
    return f"{p.title} ({', '.join(bits)}) is {_price(p)} and {_stock(p)}."


def _detail_lines(p: Product, message: str, res: Resolution, details: Mapping[str, str] | None = None) -> list[str]:
    out = []
    pages = _PAGES.search((details or {}).get("description", ""))
    if _ASKS["pages"].search(message) and pages:
        out.append(f"It runs {pages.group(1) or pages.group(2)} pages.")
    if _ASKS["format"].search(message) and re.search(r"\bformat\b", message, re.I):
        out.append(f"It is the {_FORMAT_NAMES.get(p.format, p.format)} edition, in {p.language}.")
    elif re.search(r"\blanguage\b", message, re.I) and p.language:
        out.append(f"It is in {p.language}.")
    if _ASKS["author"].search(message):
        out.append(f"{p.series} is by {p.author}" + (f", published in English by {p.publisher}." if p.publisher else "."))
    elif _ASKS["publisher"].search(message) and p.publisher:
        out.append(f"It is published by {p.publisher}.")
    if _ASKS["release"].search(message) and p.release_date:
        out.append(f"Release date: {p.release_date}.")
    if _ASKS["volumes"].search(message) and res.volumes_carried:
        out.append(_volumes_line(res))
    if _ASKS["rating"].search(message) and p.age_rating:
        out.append(f"It is rated {p.age_rating}.")
        stars = _STARS.search((details or {}).get("review_summary", ""))
        if stars:
            out.append(f"Readers rate it {stars.group(1)}/5 ({stars.group(2)} reviews).")
    return out


def _volumes_line(res: Resolution) -> str:
    vols = res.volumes_carried
    if not vols:
        return f"We don't carry single volumes of {res.series}."
    n = len(vols)
    if n == 1:
        return f"We carry 1 volume of {res.series} in English (Vol. {vols[0]})."
    return f"We carry {n} volumes of {res.series} in English (Vols. {vols[0]}-{vols[-1]})."


def _decline(series: Sequence[str]) -> str:
    names = " or ".join(series)
    return f"Sorry, we don't carry {names}, so I can't check its stock or price."


def _decline_res(res: Resolution) -> str:
    """A title the answer must not price: one we know we don't carry, one nobody listed (named as the customer
    typed it; the closest series only as a suggestion), or one of ours to ask about first."""
    if res.not_carried:
        return _decline(res.not_carried)
    if res.unknown:
        text = f"Sorry, we don't carry {res.unknown}, so I can't check its stock or price."
        return text + (f" Did you mean {res.suggestion}?" if res.suggestion else "")
    names = list(res.candidates)
    which = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    ask = f"Did you mean {which}?" if len(names) == 1 else f"Which one do you mean: {which}?"
    return ask + " Tell me the title and volume and I'll check its price and stock."


def _not_found() -> str:
    return "I couldn't find that title in our catalog. Could you share the series name or the volume number?"


# ---------------------------------------------------------------------------------------- policies
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
_ABBREV = (("p.m.", "p\u2024m\u2024"), ("a.m.", "a\u2024m\u2024"), ("e.g.", "e\u2024g\u2024"), ("i.e.", "i\u2024e\u2024"))
_STOP = frozenset(
    "a an and the of to in on for with by is are was be do does did have has my me i you your it its this that what "
    "which who how when where can could would will there their if or any i'm im so just about get".split()
)


#: A question asking for an amount or a duration is answered by the sentence stating one, even when that
#: sentence shares no word with it ("do you ship to canada and how much?" -> "... a flat $14.99 per order").
_ASKS_FIGURE: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (re.compile(r"how much|\bcosts?\b|\bfees?\b|\bcharges?\b|expensive|\bcheap|\bfree\b", re.I),
     re.compile(r"\$\d|\bfree\b", re.I)),
    (re.compile(r"how long|how many (?:days|weeks)|how soon|\bwhen\b|deadline|time limit|\bwithin\b", re.I),
     re.compile(r"\b\d+(?:\s?(?:-|\u2013|to)\s?\d+)?[\s-](?:business\s|calendar\s)?(?:days?|weeks?|months?|hours?)\b", re.I)),
)


#: How much word overlap a lower-ranked policy section needs per rank to be quoted instead of the one above it:
#: the sections come ranked by the hybrid (BM25 + dense) search, which is right far more often than overlap alone.
_RANK_PENALTY = 3.0


def _policy(message: str, context: Sequence[ScoredChunk], max_sentences: int = 3) -> str:
    """The policy sentences that answer ``message``, quoted from the best retrieved policy chunk."""
    chunks = [c for c in context if c.chunk.source_type == "policy"]
    if not chunks:
        return ""
    expanded = expand_query(message)
    query = {w for w in re.findall(r"[a-z0-9$%]+", expanded.lower()) if w not in _STOP}
    wanted = [states for asking, states in _ASKS_FIGURE if asking.search(expanded)]
    best_text, best_sentences, best_score = "", [], -1.0
    for rank, c in enumerate(chunks[:3]):
        title, _, body = c.chunk.text.partition("\n")
        sentences = _sentences(body or title)
        scored = [(_overlap(query, s) + sum(1.0 for states in wanted if states.search(s)), i, s)
                  for i, s in enumerate(sentences)]
        top = sorted(scored, key=lambda t: (-t[0], t[1]))[:max_sentences]
        # the chunk whose best sentences overlap most, the higher-ranked chunk on ties
        score = sum(t[0] for t in top[:2]) + _overlap(query, title) * 0.5 - rank * _RANK_PENALTY
        if score > best_score and len(sentences) <= max_sentences + 1:
            # a short section is quoted whole: its rules qualify each other ("ask within 14 days" / "we match")
            best_text, best_sentences, best_score = title, sentences, score
        elif score > best_score:
            keep = [t for t in top if t[0] > 0] or top[:2]
            if scored and all(t[1] != 0 for t in keep):  # the section's opening rule (its main figures) leads
                keep = [scored[0], *keep[: max_sentences - 1]]
            best_text, best_sentences, best_score = title, [s for _, _, s in sorted(keep, key=lambda t: t[1])], score
    if not best_sentences:
        return ""
    return f"{best_text}: " + " ".join(best_sentences)


def _sentences(text: str) -> list[str]:
    for a, b in _ABBREV:
        text = text.replace(a, b)
    out = [s.strip() for s in _SENTENCE.split(" ".join(text.split())) if s.strip()]
    for a, b in _ABBREV:
        out = [s.replace(b, a) for s in out]
    return out


def _overlap(query: set[str], sentence: str) -> float:
    words = {w for w in re.findall(r"[a-z0-9$%]+", sentence.lower()) if w not in _STOP}
    stems = {w[:5] for w in words}
    return sum(1.0 if w in words else 0.6 if w[:5] in stems else 0.0 for w in query)


def _no_policy() -> str:
    return ("I couldn't look up that policy just now. You can find all our policies on the Help page, "
            "or ask for a human agent.")


def _first(chunks: Sequence[ScoredChunk], source_type: str) -> ScoredChunk | None:
    return next((c for c in chunks if c.chunk.source_type == source_type), None)


def _price(p: Product) -> str:
    return f"${p.price:.2f}"


def _stock(p: Product) -> str:
    if p.format == "digital":
        return "in stock (digital, available instantly)"
    return "in stock" if p.stock > 0 else "currently out of stock"
