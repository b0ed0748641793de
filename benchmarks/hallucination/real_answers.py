"""The hallucination scorer on what the tiers actually answer: precision and recall at 0.5 and 0.7.

    python -m benchmarks.hallucination.real_answers --target localhost:50051 --triton-url localhost:8001 \\
        --eval benchmarks/results/eval/eval.json --eval benchmarks/results/eval_small_tier/eval.json \\
        [--labels benchmarks/hallucination/labels.jsonl] [--out benchmarks/results/hallucination_real]

Input: ``mangaassist eval`` reports (``eval.json``) -- the answers real tiers gave to golden-set messages, after
the output guardrails, i.e. what a customer received and what the async scorer sees in production.

Each answer gets a label, first rule that applies:

1. **fabricated** -- the eval's fact checker found a false or unknown id, price, date, stock state or policy figure;
2. the **hand label** in ``--labels`` (``{"id", "tier", "answer", "fabricated": bool, "note"}``; applies only
   when the answer text is the same), for claims the fact checker cannot see: an invented rule without a figure,
   "you can't buy it in the store", a recommendation describing a book the catalog does not describe so;
3. **grounded** -- a template-tier answer (composed from store rows and quoted policy sentences);
4. otherwise unlabelled: counted, left out of precision and recall.

Context per answer is rebuilt the way the service builds it: the ``Retrieve`` RPC on the message's retrieval query
(``server.retrieval.query.expand``) plus the policy sections and products the facts stage finds
(``server.stages.entities``), and every catalog product the answer names. The scorer is the service's
:class:`~server.hallucination.scorer.HallucinationScorer` calling Triton's ``hallucination_scorer``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from benchmarks.common import DEFAULT_BUILD_DIR, DEFAULT_RESULTS_DIR, device_info, write_json

THRESHOLDS = (0.5, 0.7)


def label(row: dict[str, Any], hand: dict[tuple[str, str], dict[str, Any]]) -> tuple[bool | None, str]:
    """(fabricated?, why) for one eval row; (None, why) when nothing labels it."""
    if row.get("error") or not row.get("answer"):
        return None, "no answer"
    if row.get("violations"):
        return True, "fact checker: " + ", ".join(sorted({v["kind"] for v in row["violations"]}))
    h = hand.get((row["id"], row["tier"]))
    if h is not None and h.get("answer") == row["answer"]:
        return bool(h["fabricated"]), "hand label" + (f": {h['note']}" if h.get("note") else "")
    if row["tier"] == "template":
        return False, "template (store rows, quoted policy)"
    return None, "unlabelled"


def confusion(items: Sequence[tuple[bool, float]], threshold: float) -> dict[str, Any]:
    """Precision and recall of "score >= threshold" for the label "fabricated" (items: (fabricated, score))."""
    tp = sum(1 for y, s in items if y and s >= threshold)
    fp = sum(1 for y, s in items if not y and s >= threshold)
    fn = sum(1 for y, s in items if y and s < threshold)
    tn = len(items) - tp - fp - fn
    return {
        "threshold": threshold, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "false_positive_rate": round(fp / (fp + tn), 4) if fp + tn else None,
    }


async def _score_all(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, Any]]:
    from model_repository.lifecycle.evaluation.facts import StoreFacts, named_products
    from clients.sdk import AsyncMangaAssistClient
    from server.hallucination.scorer import HallucinationScorer, TritonScoreFn
    from server.ids import find_order_id
    from server.retrieval.entities import EntityResolver
    from server.retrieval.query import expand
    from server.retrieval.store import CatalogStore
    from server.stages.entities import _facts, grounded_context

    store = CatalogStore(str(args.build_dir / "index" / "catalog.sqlite"))
    resolver = EntityResolver(store)
    facts = StoreFacts.load(args.build_dir / "data")
    score_fn = TritonScoreFn(args.triton_url, timeout_s=30.0)
    scorer = HallucinationScorer(score_fn, catalog=store)
    client = AsyncMangaAssistClient(args.target, timeout=30.0)
    out = []
    try:
        for i, row in enumerate(rows):
            message = row["message"]
            chunks = await _retrieved(client, expand(message))
            f = _facts(resolver, message, row.get("answered_intent") or row["intent"], find_order_id(message), chunks, 3)
            named = [a for *_, cands in named_products(facts, row["answer"]) for a in cands]
            products = list(dict.fromkeys([p.asin for p in f.products] + named))
            result = await _scored(scorer, row["answer"], grounded_context(chunks, f), products)
            out.append({**row, "score": round(result.score, 4), "claims": len(result.claims),
                        "worst_claim": result.worst.claim if result.worst else None})
            if (i + 1) % 50 == 0:
                print(f"scored {i + 1}/{len(rows)}", file=sys.stderr)
    finally:
        await client.close()
        await score_fn.close()
        store.close()
    return out


async def _retrieved(client: Any, query: str, attempts: int = 4) -> list[Any]:
    """The Retrieve RPC's chunks; a busy machine's DEADLINE_EXCEEDED is retried (the context must not be empty
    just because the benchmark ran while something else used the cores)."""
    from clients.errors import MangaAssistError
    from server.retrieval.base import Chunk, ScoredChunk

    for attempt in range(attempts):
        try:
            resp = await client.retrieve(query, top_k=5, rerank=True)
            return [ScoredChunk(Chunk(c.chunk_id, c.doc_id, c.source_type, c.text, c.asin or None), c.score)
                    for c in resp.chunks]
        except MangaAssistError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5 * (attempt + 1))
    return []


async def _scored(scorer: Any, answer: str, sources: list[Any], products: list[str], attempts: int = 4) -> Any:
    """The scorer's result; Triton shedding the request on a busy machine (queue timeout) is retried."""
    from server.errors import BackendError

    for attempt in range(attempts):
        try:
            return await scorer.score(answer, sources=sources, products=products)
        except BackendError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(1.0 * (attempt + 1))
    raise AssertionError("unreachable")


def report(scored: list[dict[str, Any]]) -> dict[str, Any]:
    labelled = [r for r in scored if r["fabricated"] is not None]
    by_tier: dict[str, Any] = {}
    for tier in sorted({r["tier"] for r in labelled}):
        part = [(r["fabricated"], r["score"]) for r in labelled if r["tier"] == tier]
        by_tier[tier] = {"n": len(part), "fabricated": sum(y for y, _ in part),
                         "at": [confusion(part, t) for t in THRESHOLDS]}
    items = [(r["fabricated"], r["score"]) for r in labelled]
    return {
        "answers": len(scored), "labelled": len(labelled), "unlabelled": len(scored) - len(labelled),
        "fabricated": sum(r["fabricated"] for r in labelled),
        "no_checkable_claim": sum(1 for r in labelled if r["claims"] == 0),
        "at": [confusion(items, t) for t in THRESHOLDS], "by_tier": by_tier,
    }


def markdown(rep: dict[str, Any], sources: Sequence[str]) -> str:
    def cell(v: Any) -> str:
        return "n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    lines = [
        "# Hallucination scorer on real answers", "",
        f"Sources: {', '.join(sources)}. {rep['answers']} answers, {rep['labelled']} labelled "
        f"({rep['fabricated']} fabricated), {rep['unlabelled']} unlabelled; "
        f"{rep['no_checkable_claim']} labelled answers state no checkable claim (score 0).", "",
        "| tier | n | fabricated | threshold | precision | recall | false-positive rate | tp / fp / fn / tn |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for tier, t in [("all", {"n": rep["labelled"], "fabricated": rep["fabricated"], "at": rep["at"]}), *rep["by_tier"].items()]:
        for c in t["at"]:
            lines.append(f"| {tier} | {t['n']} | {t['fabricated']} | {c['threshold']} | {cell(c['precision'])} | "
                         f"{cell(c['recall'])} | {cell(c['false_positive_rate'])} | {c['tp']} / {c['fp']} / {c['fn']} / {c['tn']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.hallucination.real_answers", description=__doc__.split("\n")[0])
    p.add_argument("--target", default="localhost:50051", help="a running MangaAssist service (for Retrieve)")
    p.add_argument("--triton-url", required=True, help="the Triton serving hallucination_scorer (gRPC host:port)")
    p.add_argument("--eval", action="append", required=True, type=Path, help="an eval.json (repeatable)")
    p.add_argument("--labels", type=Path, default=Path(__file__).with_name("labels.jsonl"))
    p.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR)
    p.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR / "hallucination_real")
    args = p.parse_args(argv)
    hand = {}
    if args.labels.exists():
        for line in args.labels.read_text(encoding="utf-8").splitlines():
            if line.strip():
                h = json.loads(line)
                hand[(h["id"], h["tier"])] = h
    rows = []
    for path in args.eval:
        for r in json.loads(path.read_text(encoding="utf-8"))["records"]:
            fabricated, why = label(r, hand)
            rows.append({k: r.get(k) for k in ("id", "intent", "answered_intent", "message", "tier", "answer", "error")}
                        | {"violations": r.get("violations") or [], "fabricated": fabricated, "label_why": why,
                           "source": str(path)})
    scored = asyncio.run(_score_all([r for r in rows if r["answer"]], args))
    rep = report(scored)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "real_answers.json", {"device": device_info(), "report": rep, "answers": scored})
    (args.out / "real_answers.md").write_text(markdown(rep, [str(p) for p in args.eval]), encoding="utf-8")
    print(markdown(rep, [str(p) for p in args.eval]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
