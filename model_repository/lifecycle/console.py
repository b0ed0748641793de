"""``mangaassist``: the one command line (pyproject.toml ``[project.scripts]``), the client's and the operator's.

    mangaassist chat | classify | retrieve | health | describe ...   # clients/cli.py: the service's calls (SDK)
    mangaassist eval [--golden PATH] [--gate] [--threshold k=v]...   # the eval harness: a running service's answers
    mangaassist eval-conversations ...                               # follow-ups on multi-turn conversations
    mangaassist eval --gate --challenger N [--triton URL]            # the model gate (gate.py), recorded in the registry
    mangaassist model {baseline,train,gate,rollout,promote,rollback,status,retrain,card} ...   # cli.py
    mangaassist retrain LABELLED... [--triton URL]   # = ``model retrain``: labelled rows -> new version -> gate -> shadow
    mangaassist drift {report,triggers,cost,label-export,label-import} ...   # drift.py: reports over the traffic log

``eval`` judges a running service's answers on a golden set (factual correctness, relevance, completeness,
helpfulness, fluency, safety, format, latency; see :mod:`model_repository.lifecycle.evaluation`) and writes eval.json, eval.md
and plots to ``--out``. With ``--gate`` it exits 3 when a threshold fails, naming each on stderr; it exits 1
when the run itself broke (service unreachable, every call failed, unreadable golden set or data), 2 for a
bad ``--threshold`` / ``--budget`` / rater sheet.

The client commands are clients/cli.py's, whose parser this one extends; everything else is imported only when its
command runs, so with the client alone installed (``pip install mangaassist``: grpcio + protobuf) the client
commands work and the rest say what is missing. It lives here, in the model lifecycle's home, because the lifecycle
may import the client (it drives the service through the SDK) and the client may not import the lifecycle.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence, TextIO

from clients import cli as client_cli


def parser() -> argparse.ArgumentParser:
    p, sub = client_cli.build_parser()
    ev = sub.add_parser("eval", help="judge the service's answers on a golden set (seven dimensions + latency)")
    ev.add_argument("--golden", default=".build/golden/golden.jsonl", help="golden set JSONL")
    ev.add_argument("--data", default=".build/data", help="store data dir (catalog, policies, orders, series)")
    ev.add_argument("--summary", default=".build/reports/summary.json", help="the build's model report (optional)")
    ev.add_argument("--out", default="benchmarks/results/eval", help="where eval.json, eval.md and plots go")
    ev.add_argument("--gate", action="store_true", help="exit 3 when a threshold fails")
    ev.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE", help="override a gate threshold")
    ev.add_argument("--budget", action="append", default=[], metavar="TIER=MS", help="answer-stage p99 budget for a tier")
    ev.add_argument("--concurrency", type=int, default=4)
    ev.add_argument("--timeout", dest="eval_timeout", type=float, metavar="S", help="per-call deadline (default: --timeout)")
    ev.add_argument("--limit", type=int, help="only the first N records")
    ev.add_argument("--filter-intent", help="only records of this golden intent")
    ev.add_argument("--per-intent", type=int, help="a stratified sample: the first N records of each intent "
                    "(a slow tier measured on every intent)")
    ev.add_argument("--stream-sample", type=int, default=100, help="records timed over ChatStream (first text)")
    ev.add_argument("--export-raters", metavar="CSV", help="write a stratified sample of 50 answers for human rating")
    ev.add_argument("--import-raters", metavar="CSV", help="read human 1-5 scores into the report")
    ev.add_argument("--seed", type=int, default=1234, help="seed of the rater sample")
    ev.add_argument("--openworld", default="heldout,blind,fresh",
                    help="frozen open-world title sets reported beside the golden set (comma-separated: dev, heldout, "
                    "blind, fresh; '' = none; skipped with --limit / --filter-intent / --per-intent)")
    ev.add_argument("--challenger", metavar="VERSION", help="instead of judging answers: gate this intent classifier "
                    "version against the champion on Triton and record the verdict (model_repository/lifecycle/gate.py)")
    ev.add_argument("--triton", default="localhost:8001", help="with --challenger: tritonserver gRPC address")
    ev.add_argument("--lifecycle-dir", default=".lifecycle", help="with --challenger: the model registry's directory")
    ev.add_argument("--repository", help="with --challenger: the Triton repository holding the versions (its file is "
                    "hashed into the gate record; default <lifecycle-dir>/triton)")
    ev.add_argument("--answer-sample", type=int, default=200, help="with --challenger: golden records answered with "
                    "both versions, hashed sample (0 = all)")
    ev.add_argument("--service-config", help="with --challenger: the service's config.yaml for the answer checks")
    model = sub.add_parser("model", add_help=False,
                           help="model versions: baseline, train, gate, rollout, promote, rollback, status (`model -h`)")
    model.add_argument("rest", nargs=argparse.REMAINDER)
    for name, text in (("retrain", "labelled flywheel rows -> new classifier version -> gate -> shadow (`retrain -h`)"),
                       ("drift", "drift / cost reports, label-export, label-import over the traffic log (`drift -h`)")):
        sub.add_parser(name, add_help=False, help=text).add_argument("rest", nargs=argparse.REMAINDER)
    conv = sub.add_parser("eval-conversations", help="judge follow-ups on multi-turn conversations, with and without memory")
    conv.add_argument("--conversations", default=".build/golden/conversations.jsonl", help="conversations JSONL")
    conv.add_argument("--out", default="benchmarks/results/conversations", help="where conversations.json/.md go")
    conv.add_argument("--concurrency", type=int, default=2)
    conv.add_argument("--limit", type=int, help="only the first N conversations")
    conv.add_argument("--no-openworld", action="store_true",
                      help="skip the frozen open-world held-out conversations (tests/fixtures/conversations_openworld)")
    return p


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["model"]:  # the registry, versions, gate and rollout files (cli.py)
        from model_repository.lifecycle.cli import main as model_main

        return model_main(argv[1:], stdout or sys.stdout)
    if argv[:1] == ["retrain"]:  # = `mangaassist model retrain ...` (the flywheel's last step)
        from model_repository.lifecycle.cli import main as model_main

        return model_main(argv, stdout or sys.stdout)
    if argv[:1] == ["drift"]:  # reports over the service's traffic log (drift.py)
        from model_repository.lifecycle.drift import main as drift_main

        return drift_main(argv[1:])
    args = parser().parse_args(argv)
    out = stdout or sys.stdout
    if args.command == "eval" and args.challenger:
        return _gate_version(args, out)
    if args.command == "eval":
        return _eval(args, out)
    if args.command == "eval-conversations":
        from model_repository.lifecycle.evaluation.conversations import run as run_conversations

        return run_conversations(args.target, args.conversations, args.out, token=args.token, timeout=args.timeout,
                                 concurrency=args.concurrency, limit=args.limit, out=out,
                                 openworld=not args.no_openworld)
    return client_cli.run(args, stdin=stdin, stdout=out)


def _gate_version(args: argparse.Namespace, out: TextIO) -> int:
    """``eval --challenger N``: the model gate; exit 3 on a failed gate only with ``--gate``."""
    from pathlib import Path

    from model_repository.lifecycle.cli import EXIT_GATE_FAILED, run_gate_command

    ns = argparse.Namespace(triton=args.triton, challenger=args.challenger, champion=None, requests=200, seconds=3.0,
                            concurrency=4, build_dir=Path(args.data).parent, lifecycle_dir=Path(args.lifecycle_dir),
                            golden=Path(args.golden), answer_sample=args.answer_sample,
                            service_config=Path(args.service_config) if args.service_config else None,
                            repository=Path(args.repository) if args.repository else None, rollout_file=None)
    code = run_gate_command(ns, args.threshold, out)
    return 0 if code == EXIT_GATE_FAILED and not args.gate else code


def _eval(args: argparse.Namespace, out: TextIO) -> int:
    from model_repository.lifecycle.evaluation import EvalOptions, run_eval

    return run_eval(
        EvalOptions(
            target=args.target, token=args.token, golden=args.golden, data=args.data, summary=args.summary,
            out=args.out, gate=args.gate, thresholds=args.threshold, budgets=args.budget, concurrency=args.concurrency,
            timeout=args.eval_timeout or args.timeout, limit=args.limit, filter_intent=args.filter_intent,
            per_intent=args.per_intent,
            stream_sample=args.stream_sample, export_raters=args.export_raters, import_raters=args.import_raters,
            seed=args.seed, openworld=tuple(x for x in args.openworld.split(",") if x),
        ),
        out,
    )


if __name__ == "__main__":
    sys.exit(main())
