"""The golden evaluation set: customer messages with the facts a correct answer must (and must not) state.

Every answer is judged end to end on a golden set (docs/answers-and-evaluation.md). This package builds it:
``generate_golden(data_dir, seed)`` returns ~560 records, a pure function of the generated data files
(``catalog.jsonl``, ``policies.jsonl``, ``orders.jsonl``, ``series.jsonl``, ``intents/*.jsonl``) and the seed:

* a **generated part** (``gen-<intent>-NNNN``): phrasings written for this set (not the intent templates of
  ``datagen/intents.py`` nor the policy queries of ``datagen/triples.py``), filled from the catalog, the
  policies and the orders with ``random.Random(f"{seed}:golden:...")``;
* a **hand-written part** (``hw-NNN``, ``handwritten.jsonl``): messages as customers type them (slang,
  Japanese script, romaji, typos, fragments, several asks at once, titles the store does not carry,
  competitors, adversarial and PII inputs). They name entities *by reference* (series + volume + format +
  language, a policy aspect, an order placeholder such as ``{order:shipped}`` / ``{order:unknown}``) and the
  generator fills the facts from the data, so they stay true for any seed.

No golden message equals (after ``lowercase`` + ``re.sub(r"[\\W_]+", " ", text)``) any message of the intent
train/validation/test splits: colliding generated candidates are redrawn, colliding hand-written ones dropped.

Record contract (one JSON object per line of ``golden.jsonl``)
--------------------------------------------------------------
``id``          ``gen-<intent>-NNNN`` | ``hw-NNN``
``message``     the customer's message
``intent``      one of the eight ``INTENT_LABELS``, by the labelling rules of ``datagen/intents.py``
                (multi-intent: escalation > return_refund > order_status > the first other request)
``also_intents``  multi-intent only: the labels of the message's other asks (``[]`` otherwise); a response
                labelled with any of them matches the intent asked
``complexity``  ``simple`` | ``detailed`` | ``multi_intent``
``edge``        tags from :data:`EDGE_TAGS` (``["none"]`` when nothing applies)
``source``      ``generated`` | ``handwritten``
``entity``      ``{"series", "asin", "carried", "order_id", "policy_id", "genre"}`` (each may be null);
                ``order_id`` is always an order of ``orders.jsonl`` (an unknown id appears only in the message)
``must_state``  list of groups; the answer must contain at least one alternative of every group
                (case-insensitive substring)
``must_not_state``  strings the answer must not contain (case-insensitive substring)
``expect``      ``{"decline", "blocked", "redact": [kinds], "escalate", "ask_order_id"}``
``reference``   a correct answer; it satisfies its own ``must_state`` / ``must_not_state``
``customer_id`` the account the eval chats as (``ChatRequest.customer_id``): the owner of ``entity.order_id``
                (``catalog_schema.order_customer``), else ``G-<id>``, a signed-in account with no orders

Phrasings ``must_state`` expects from an answer (what the answer composer has to produce):
exact catalog titles (or ``"<series>, Vol. N"`` / ``"<series> Vol. N"``), prices as ``$9.99``, stock as
``in stock`` / ``out of stock`` (digital: ``in stock`` or ``available``), ISO dates ``YYYY-MM-DD``, catalog
author/publisher/age rating strings, ``N volumes``; policy figures as written in ``policies.jsonl`` (``$14.99``,
``30 days``, ``5-7 business days``); order ids ``MA-NNNNNNNN``, status words (``shipped``, ``delivered``,
``out for delivery``, ``being prepared``/``processing``, ``cancelled``) and tracking numbers; declines with
``don't carry``; hand-offs naming a ``human`` or an ``agent``; missing order ids asked for as ``order number``;
unknown ones answered with ``couldn't find``.
"""

from __future__ import annotations

from model_repository.golden.generate import EDGE_TAGS, PII_KINDS, generate_golden, write_golden

__all__ = ["EDGE_TAGS", "PII_KINDS", "generate_golden", "write_golden"]
