"""Stage 6b: the facts an answer may state -- which products the customer means (or that the store does not
carry them), and which policy sections answer the message (BM25 + dense, fused), resolved from the message and
the retrieved chunks (``server/retrieval/entities.py``).

A message may ask two things ("is Berserk 14 in stock? also what does shipping to Germany cost"): products
named exactly and picks for a recommendation asked for are resolved whatever the intent, so the answer can
address both asks."""

from __future__ import annotations

import asyncio
from typing import Sequence

from server.llm.templates import RECOMMEND_WORDS, Facts
from server.request import RequestContext
from server.retrieval.base import ScoredChunk
from server.retrieval.entities import EntityResolver

#: Intents whose answers are about products (and show product cards).
PRODUCT_INTENTS = frozenset({"product_question", "price_deal", "recommendation", ""})


async def facts_for(
    resolver: EntityResolver, text: str, intent: str, order_id: str | None, chunks: Sequence[ScoredChunk],
    limit: int, ctx: RequestContext,
) -> Facts:
    with ctx.timings.stage("entities"):
        return await asyncio.to_thread(_facts, resolver, text, intent, order_id, chunks, limit)


def _facts(
    resolver: EntityResolver, text: str, intent: str, order_id: str | None, chunks: Sequence[ScoredChunk], limit: int
) -> Facts:
    res = resolver.resolve(text, chunks, limit=limit)
    if intent == "recommendation" or (intent not in ("order_status", "escalation") and RECOMMEND_WORDS.search(text)):
        products = resolver.recommend(text, res, chunks, limit)
    elif intent in PRODUCT_INTENTS and res.not_carried:
        products = resolver.recommend(text, res, chunks, 2)  # "something similar" -- real catalog products
    elif intent in PRODUCT_INTENTS or res.matched_by in ("name", "fuzzy"):
        products = list(res.products)
    else:
        products = []
    policies = resolver.policies(text, chunks) if intent != "escalation" else []
    return Facts(order_id=order_id, products=tuple(products), resolution=res, policies=tuple(policies))


def grounded_context(chunks: Sequence[ScoredChunk], facts: Facts) -> list[ScoredChunk]:
    """The answer's context: the policy sections the facts stage chose (BM25 + dense) first, then the retrieved
    product and review chunks. Every tier, the output guardrails and the hallucination scorer see this one list,
    so a policy figure quoted from a section found lexically is grounded in what they check against."""
    if not facts.policies:
        return list(chunks)
    chosen = {c.chunk.doc_id for c in facts.policies}
    return [*facts.policies, *(c for c in chunks if c.chunk.doc_id not in chosen)]
