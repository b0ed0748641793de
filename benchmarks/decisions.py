"""Decision reports from measured figures (issue 16 #4, the part that needs no new measurement): each option's
compound metric computed from result files already in the repository, the pick, and a reversal trigger.

* tier options -- quality-adjusted latency ``quality x 20 - p99 s x 10`` (quality = the mean of the golden eval's
  seven dimensions: factual, relevance, completeness, helpfulness, fluency ROUGE-L, safety, format) from the
  ``mangaassist eval`` runs of the template tier and of the small tier;
* adapter and reranker -- cost per quality point (CPQ, Recall@3 points; accept < $3,000/point/month): monthly
  Triton cost from the measured cost per inference (benchmarks/results/drift: Triton's own counters, the instance
  price spread over busy time) at ``--requests-per-month``, over the Recall@3 gain the build measured
  (.build/reports/summary.json);
* chunk size -- effective retrieval quality (Recall@3 x Precision@3) for 128 / 256 / 512 / variable from
  ``python -m benchmarks.chunk_sizes`` (benchmarks/results/chunk_sizes/chunk_sizes.json);
* the seven reversal triggers evaluated on live traffic (server/drift/triggers.py): their thresholds, as configured.

    .venv/bin/python -m benchmarks.decisions [--requests-per-month 30000000]

The classifier's cost per marginal accuracy point is benchmarks/results/model_selection (lifecycle I's).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks import common

R = common.DEFAULT_RESULTS_DIR
CPQ_ACCEPT = 3000.0


def quality(summary: dict[str, Any]) -> dict[str, float]:
    dims = {
        "factual": summary["factual"]["rate"], "relevance": summary["relevance"]["rate"],
        "completeness": summary["completeness"]["complete_rate"], "helpfulness": summary["helpfulness"]["auto_rate"],
        "fluency": summary["fluency"]["rouge_l_f1"], "safety": summary["safety"]["rate"], "format": summary["format"]["rate"],
    }
    return {**dims, "quality": sum(dims.values()) / len(dims)}


def tier_options(paths: dict[str, Path]) -> dict[str, Any]:
    rows = {}
    for option, path in paths.items():
        data = json.loads(path.read_text())
        s = data["summary"]
        q = quality(s)
        p99_ms = max(t["client_ms"]["p99"] for t in s["latency"]["per_tier"].values())
        rows[option] = {**{k: round(v, 4) for k, v in q.items()}, "p99_s": round(p99_ms / 1000, 3), "records": s["records"],
                        "qal": round(q["quality"] * 20 - p99_ms / 1000 * 10, 2), "source": str(path.relative_to(common.ROOT)) if path.is_relative_to(common.ROOT) else str(path)}
    best = max(rows, key=lambda k: rows[k]["qal"])
    other = [k for k in rows if k != best]
    trigger = ""
    if other:
        o = other[0]
        p99_needed = (rows[o]["quality"] * 20 - rows[best]["qal"]) / 10  # the p99 at which o's QAL would tie
        q_needed = (rows[best]["qal"] + rows[o]["p99_s"] * 10) / 20  # the quality at which o's QAL would tie
        latency = (f"at its quality it would need a p99 under {p99_needed:.2f} s" if p99_needed > 0
                   else "no p99 makes up its quality gap")
        trigger = (f"route an intent to {o} when an eval run shows its QAL above {best}'s: {latency}; at its p99 "
                   f"({rows[o]['p99_s']} s) it would need quality {q_needed:.2f}"
                   + (" (above 1: unreachable)" if q_needed > 1 else "")
                   + f". Go back from {best} if its live quality falls (hallucination daily-average alert, drift decision "
                   f"model_problem) or its QAL in the next eval run drops below {o}'s")
    return {"metric": "quality x 20 - p99_s x 10", "options": rows, "pick": best, "reversal_trigger": trigger}


def cpq(requests_per_month: float) -> dict[str, Any]:
    summary = json.loads((common.ROOT / ".build" / "reports" / "summary.json").read_text())
    sim = json.loads((R / "drift" / "simulation.json").read_text())["triton_cost"]["per_inference_usd"]
    bench = json.loads((R / "drift" / "triton_cost.json").read_text())["models"]
    adapter = summary["embedding_adapter"]
    rerank = summary["reranker"]["rerank_eval"]
    pairs = rerank["candidates"]
    options = {
        "embedding_adapter": {
            "recall@3_without": adapter["base"]["recall@3"], "recall@3_with": adapter["adapted"]["recall@3"],
            "usd_per_inference": bench["embedding_adapter"]["usd_per_inference"], "inferences_per_chat": 1,
        },
        "reranker": {
            "recall@3_without": rerank["recall@3_retrieve_only"], "recall@3_with": rerank["recall@3_retrieve_then_rerank_fused"],
            "usd_per_inference": sim["reranker"], "inferences_per_chat": pairs,
        },
    }
    for name, o in options.items():
        points = (o["recall@3_with"] - o["recall@3_without"]) * 100
        month = o["usd_per_inference"] * o["inferences_per_chat"] * requests_per_month
        o.update(points=round(points, 2), usd_per_month=round(month, 2), cpq_usd_per_point=round(month / points, 2),
                 accept=month / points < CPQ_ACCEPT)
        o["reversal_trigger"] = (f"drop it when its CPQ passes ${CPQ_ACCEPT:,.0f}/point: at ${o['usd_per_inference']:.2g}/inference that is "
                                 f"a Recall@3 gain under {month / CPQ_ACCEPT:.3g} points, or a cost above "
                                 f"${points * CPQ_ACCEPT / (o['inferences_per_chat'] * requests_per_month):.2g}/inference "
                                 f"(a GPU instance price change re-measures it: python -m benchmarks.drift.triton_cost)")
    return {"metric": "monthly Triton cost / Recall@3 points gained", "accept_below_usd_per_point": CPQ_ACCEPT,
            "requests_per_month": requests_per_month, "options": options}


def chunk_sizes(path: Path = R / "chunk_sizes" / "chunk_sizes.json") -> dict[str, Any] | None:
    """The chunk-size report's options and pick (None until ``python -m benchmarks.chunk_sizes`` has run)."""
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    options = {k: {m: o[m] for m in ("recall@3", "precision@3", "effective", "chunks", "same_chunks_as")} for k, o in data["options"].items()}
    best = max(options, key=lambda k: options[k]["effective"])
    rec = data["recommendation"]
    if options[rec["pick"]]["effective"] < options[best]["effective"]:
        raise ValueError(f"{path}: the pick {rec['pick']} is not the best effective quality ({best}); re-run the benchmark")
    return {"metric": "Recall@3 x Precision@3", "options": options, "pick": rec["pick"], "why": rec.get("why", ""),
            "reversal_trigger": rec["reversal_trigger"],
            "queries": data["queries"], "documents": data["documents"], "command": data.get("command", "python -m benchmarks.chunk_sizes")}


def reversal_triggers() -> list[dict[str, Any]]:
    from server.drift.triggers import TRIGGERS, TriggerConfig
    from server.settings import Settings

    cfg = TriggerConfig.from_settings(Settings())
    return [{"trigger": t.name, "alert": t.alert, "setting": f"triggers.{t.setting}", "threshold": cfg.threshold(t),
             "direction": "above" if t.above else "below", "measures": t.measures, "action": t.action} for t in TRIGGERS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests-per-month", type=float, default=30_000_000)
    args = parser.parse_args(argv)
    tiers = tier_options({"template": R / "eval" / "eval.json", "small": R / "eval_small_tier" / "eval.json"})
    costs = cpq(args.requests_per_month)
    chunks = chunk_sizes()
    triggers = reversal_triggers()
    out = R / "decisions"
    common.write_json(out / "decisions.json", {"tiers": tiers, "cpq": costs, "chunk_sizes": chunks, "reversal_triggers": triggers})
    lines = ["# Decision reports (computed from measured figures: `python -m benchmarks.decisions`)", "",
             "## Answer tier: quality-adjusted latency (quality x 20 - p99 s x 10)", "",
             "| option | quality (mean of 7) | factual | relevance | complete | helpful | fluency | safety | format | p99 s | records | QAL |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for k, r in tiers["options"].items():
        lines.append(f"| {k} | {r['quality']:.3f} | {r['factual']:.3f} | {r['relevance']:.3f} | {r['completeness']:.3f} | "
                     f"{r['helpfulness']:.3f} | {r['fluency']:.3f} | {r['safety']:.3f} | {r['format']:.3f} | {r['p99_s']} | {r['records']} | **{r['qal']}** |")
    lines += ["", f"**Pick: {tiers['pick']}.** Reversal trigger: {tiers['reversal_trigger']}.", "",
              f"## Adapter and reranker: cost per quality point (accept < ${CPQ_ACCEPT:,.0f}/point/month; "
              f"{args.requests_per_month:,.0f} chats/month)", "",
              "| component | Recall@3 without → with | points | $/inference (measured) | inferences/chat | $/month | CPQ $/point | accept |",
              "|---|---|---|---|---|---|---|---|"]
    for k, o in costs["options"].items():
        lines.append(f"| {k} | {o['recall@3_without']:.3f} → {o['recall@3_with']:.3f} | {o['points']} | {o['usd_per_inference']:.2g} | "
                     f"{o['inferences_per_chat']} | {o['usd_per_month']:,.2f} | {o['cpq_usd_per_point']:,.2f} | {o['accept']} |")
    lines += [""] + [f"- **{k}** reversal trigger: {o['reversal_trigger']}." for k, o in costs["options"].items()]
    if chunks is not None:
        lines += ["", f"## Chunk size: effective retrieval quality (Recall@3 x Precision@3; `{chunks['command']}`, "
                  f"{chunks['queries']} golden queries, {chunks['documents']} documents)", "",
                  "| chunk size | chunks | Recall@3 | Precision@3 | R@3 x P@3 | same chunks as |", "|---|---|---|---|---|---|"]
        for k, o in chunks["options"].items():
            lines.append(f"| {k} | {o['chunks']} | {o['recall@3']:.3f} | {o['precision@3']:.3f} | **{o['effective']:.4f}** | {o['same_chunks_as']} |")
        lines += ["", f"**Pick: {chunks['pick']}** ({chunks['why']}). Reversal trigger: {chunks['reversal_trigger']}."]
    lines += ["", "## Reversal triggers on live traffic (server/drift/triggers.py; `python -m server.drift triggers`)", "",
              "| trigger | threshold (setting) | alert | reversal action |", "|---|---|---|---|"]
    for t in triggers:
        lines.append(f"| {t['trigger']} | {'>' if t['direction'] == 'above' else '<'} {t['threshold']:g} (`{t['setting']}`) | "
                     f"{t['alert']} | {t['action']} |")
    lines += ["", "Caveats: the small-tier eval is 64 records (41 fell back to the template after an empty answer); the "
              "per-inference costs are CPU Triton on a 2-core box shared with other runs at $1.006/h, so they price this box, "
              "not a GPU; the reranker's Recall@3 gain is the build's held-out figure, while on CPU the service skips it on "
              "most chats (budget), so the gain is not what production gets here."]
    (out / "decisions.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
