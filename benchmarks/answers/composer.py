"""The answer composer alone on the golden set: the golden intent and policy section given, the real entity
resolver, template composer and guardrails, judged by ``mangaassist eval``'s dimensions.

It isolates the answer stage from the classifier and retrieval (what ``mangaassist eval`` measures end to end
against a running service), so a composer change is judged in seconds without tritonserver:

    python -m benchmarks.answers.composer [--build .build] [--show INTENT]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
from pathlib import Path

from model_repository.lifecycle.evaluation.dimensions import Outcome, judge, load_golden
from model_repository.lifecycle.evaluation.facts import StoreFacts
from mangaassist.v1 import mangaassist_pb2 as pb
from server.guardrails.suite import GuardrailSuite
from server.ids import find_order_id
from server.llm.base import LLMRequest
from server.llm.templates import TemplateTier
from server.retrieval.base import Chunk, ScoredChunk
from server.retrieval.entities import EntityResolver
from server.retrieval.store import CatalogStore
from server.stages.entities import _facts

RATES = ("factual", "relevance", "complete", "safety", "format", "declined_not_carried")


def run(build: Path) -> list[dict]:
    data = build / "data"
    store = CatalogStore(build / "index" / "catalog.sqlite")
    resolver, tier, suite = EntityResolver(store), TemplateTier(), GuardrailSuite(store)
    policies = {p["policy_id"]: p for p in map(json.loads, open(data / "policies.jsonl", encoding="utf-8"))}
    facts = StoreFacts.load(data) if hasattr(StoreFacts, "load") else StoreFacts(data)
    rows = []
    for rec in load_golden(build / "golden" / "golden.jsonl"):
        screen = suite.screen_input(rec.message)
        if screen.blocked:
            resp = pb.ChatResponse(answer=tier.blocked().text, tier="template", blocked=True)
        else:
            pid = rec.entity.get("policy_id")
            ctx = []
            if pid:
                p = policies[pid]
                ctx = [ScoredChunk(Chunk(pid, f"policy:{pid}", "policy", f"{p['title']}\n{p['text']}"), 1.0)]
            f = _facts(resolver, screen.text, rec.intent, find_order_id(screen.text), ctx, 3)
            req = LLMRequest(rec.intent, screen.text, tuple(ctx), 0.0, 128, 1.0)
            out = suite.screen_output(asyncio.run(tier.generate(req, f)), ctx, screen.text)
            cards = [
                pb.ProductCard(asin=p.asin, title=p.title, price=p.price, currency="USD", in_stock=p.stock > 0)
                for p in (store.get_product(a) for a in out.answer.product_asins[:3]) if p is not None
            ]
            actions = [pb.GuardrailAction(guardrail=a.guardrail, action=a.action, detail=a.detail)
                       for a in (*screen.actions, *out.actions)]
            resp = pb.ChatResponse(answer=out.answer.text, tier="template", intent=rec.intent, cards=cards,
                                   guardrail_actions=actions)
        rows.append(judge(Outcome(rec, resp), facts))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", type=Path, default=Path(".build"))
    ap.add_argument("--show", help="print the failing records of this intent")
    args = ap.parse_args()
    rows = run(args.build)
    for k in RATES:
        vals = [r[k] for r in rows if r[k] is not None]
        print(f"{k:<22} {sum(vals) / max(len(vals), 1):.3f}  (n={len(vals)})")
    print(f"{'fabricated':<22} {sum(r['fabricated'] for r in rows)}")
    bad = [r for r in rows if not r["complete"] or not r["factual"] or r["relevance"] is False]
    print("records failing completeness/factual/relevance by intent:", dict(collections.Counter(r["intent"] for r in bad)))
    for r in bad:
        if r["intent"] == args.show:
            print(f"--- {r['id']} | {r['message'][:100]}\n    {r['answer'][:240]}\n    missing {r['missing']} "
                  f"{r['forbidden_present']} {r['relevance_failed']}")


if __name__ == "__main__":
    main()
