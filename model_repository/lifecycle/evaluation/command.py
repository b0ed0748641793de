"""``mangaassist eval``: golden set -> running service -> judgements -> report -> gate (exit status)."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

from clients.errors import MangaAssistError
from model_repository.lifecycle import gate
from model_repository.lifecycle.evaluation import dimensions, raters, report
from model_repository.lifecycle.evaluation.facts import StoreFacts
from model_repository.lifecycle.evaluation.runner import run_golden

EXIT_OK, EXIT_BROKEN, EXIT_USAGE = 0, 1, 2


@dataclass
class EvalOptions:
    target: str = "localhost:50051"
    token: str | None = None
    golden: str = ".build/golden/golden.jsonl"
    data: str = ".build/data"
    summary: str | None = ".build/reports/summary.json"
    out: str = "benchmarks/results/eval"
    gate: bool = False
    thresholds: list[str] = field(default_factory=list)  # "name=value"
    budgets: list[str] = field(default_factory=list)  # "tier=ms"
    concurrency: int = 4
    timeout: float = 10.0
    limit: int | None = None
    filter_intent: str | None = None
    per_intent: int | None = None  # a stratified sample: the first N records of each intent
    stream_sample: int = 100
    export_raters: str | None = None
    import_raters: str | None = None
    seed: int = 1234
    #: the frozen open-world title sets reported beside the golden set (model_repository/lifecycle/evaluation/openworld.py); () = none.
    #: Skipped on a partial golden run (--limit / --filter-intent / --per-intent).
    openworld: tuple[str, ...] = ("heldout", "blind", "fresh")


def run_eval(opts: EvalOptions, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        overrides = gate.parse_pairs(opts.thresholds, "--threshold")
        gate.thresholds(overrides)
        budgets = gate.parse_pairs(opts.budgets, "--budget")
        human = raters.import_scores(opts.import_raters) if opts.import_raters else None
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        records = dimensions.load_golden(opts.golden)
        facts = StoreFacts.load(opts.data)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: cannot load the golden set or the store data: {err}", file=sys.stderr)
        return EXIT_BROKEN
    if opts.filter_intent:
        records = [r for r in records if r.intent == opts.filter_intent]
    if opts.per_intent:
        records = per_intent(records, opts.per_intent)
    records = records[: opts.limit] if opts.limit else records
    if not records:
        print("error: no golden records to evaluate", file=sys.stderr)
        return EXIT_BROKEN

    try:
        result = asyncio.run(run_golden(
            records, target=opts.target, token=opts.token, concurrency=opts.concurrency, timeout=opts.timeout,
            stream_sample=opts.stream_sample,
        ))
    except MangaAssistError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BROKEN

    scorer = dimensions.rouge_scorer()
    rows = [dimensions.judge(o, facts, scorer) for o in result.outcomes]
    summary = dimensions.summarise(rows, result.ttft_ms)
    if human is not None:
        summary["helpfulness"]["human"] = human
        summary["headline"]["human_mean"] = human["mean"]
    # the judge judged: the fact checker's recall on one-fact mutations of these records' references
    from model_repository.lifecycle.evaluation import mutations  # here, so `python -m model_repository.lifecycle.evaluation.mutations` runs it fresh

    judge_doc = mutations.summary(mutations.evaluate(facts, [asdict(r) for r in records], seed=opts.seed))
    models = report.model_figures(opts.summary)
    checks = gate.evaluate(summary["headline"], models, overrides, budgets)
    doc: dict[str, Any] = {
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": {**asdict(opts), "token": "(set)" if opts.token else None},  # never the secret itself
        "service": result.describe,
        "wall_s": result.wall_s,
        "summary": summary,
        "models": models,
        "gate": report.gate_section(checks, opts.gate),
        "judge": judge_doc,
        "failures": dimensions.failures(rows),
        "records": rows,
    }
    if opts.openworld and not (opts.limit or opts.filter_intent or opts.per_intent):
        from model_repository.lifecycle.evaluation import openworld

        doc["openworld"] = asyncio.run(openworld.evaluate(opts.target, halves=opts.openworld,
                                                          concurrency=opts.concurrency, token=opts.token))
    written = report.write(doc, rows, opts.out)
    if opts.export_raters:
        n = raters.export_sample(rows, opts.export_raters, seed=opts.seed)
        print(f"rater sheet: {opts.export_raters} ({n} rows)", file=out)
    _print_summary(summary, doc["gate"], written, out, judge_doc)
    if "openworld" in doc:
        from model_repository.lifecycle.evaluation import openworld

        print(openworld.format_report(doc["openworld"]), file=out)

    if all(o.error for o in result.outcomes):
        print(f"error: every call failed ({summary['errors']})", file=sys.stderr)
        return EXIT_BROKEN
    if opts.gate and not doc["gate"]["passed"]:
        for line in doc["gate"]["failed"]:
            print(f"gate failed: {line}", file=sys.stderr)
        return gate.GATE_FAILED_EXIT
    return EXIT_OK


def _print_summary(summary: dict[str, Any], gate_doc: dict[str, Any], written: list, out: TextIO,
                   judge_doc: dict[str, Any] | None = None) -> None:
    h = summary["headline"]
    print(f"evaluated {summary['records']} records (errors: {summary['errors'] or 'none'})", file=out)
    for name in ("fabricated", "factual", "relevance", "intent_match", "declined_not_carried", "completeness",
                 "helpfulness", "rouge_l", "bleu", "safety", "format", "ttft_p99_ms"):
        print(f"  {name:22s} {report.fmt(h.get(name))}", file=out)
    if judge_doc and judge_doc["mutants"]:
        ctl = judge_doc["controls"]["reference"]
        print(f"fact checker on {judge_doc['mutants']} one-fact mutations of the references: recall "
              f"{report.fmt(judge_doc['recall'])}; references flagged {ctl['flagged']}/{ctl['n']}", file=out)
        for kind, r in judge_doc["kinds"].items():
            if r["n"]:
                print(f"  {kind:22s} {report.fmt(r['recall'])} ({r['caught']}/{r['n']})", file=out)
    print(f"gate: {'PASS' if gate_doc['passed'] else 'FAIL'}{'' if gate_doc['enabled'] else ' (not enforced)'}", file=out)
    print("wrote " + ", ".join(str(p) for p in written), file=out)


def per_intent(records: list, n: int) -> list:
    """The first ``n`` records of each golden intent, in golden-set order (a stratified sample)."""
    taken: dict[str, int] = {}
    out = []
    for r in records:
        if taken.get(r.intent, 0) < n:
            taken[r.intent] = taken.get(r.intent, 0) + 1
            out.append(r)
    return out
