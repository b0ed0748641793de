"""``mangaassist`` -- command-line client for the MangaAssist service.

    mangaassist chat "is chainsaw man vol 3 in stock?" [--json] [--session S] [--stream]
    mangaassist classify [--file FILE]        # one message per line (stdin by default) -> JSON lines
    mangaassist retrieve "return policy" [--k 5] [--no-rerank] [--json]
    mangaassist health [--service readiness]  # exit status 0 only when SERVING
    mangaassist describe
    mangaassist eval --gate --challenger N [--triton URL] [--lifecycle-dir DIR]   # the model gate (model lifecycle)
    mangaassist model {baseline,train,gate,rollout,promote,rollback,status,retrain,card} ...  # model_repository/lifecycle/cli.py
    mangaassist retrain LABELLED... [--triton URL]   # the flywheel: labelled rows -> new version -> gate -> shadow
    mangaassist drift {report,cost,label-export,label-import} ...   # the traffic log's reports (server/drift)
    mangaassist eval [--golden PATH] [--data DIR] [--summary PATH] [--out DIR] [--gate] [--threshold k=v]...
                     [--budget tier=ms]... [--concurrency N] [--limit N] [--filter-intent I] [--per-intent N] [--stream-sample N]
                     [--export-raters CSV] [--import-raters CSV]

``eval`` judges a running service's answers on a golden set (factual correctness, relevance, completeness,
helpfulness, fluency, safety, format, latency; see :mod:`clients.evaluation`) and writes eval.json, eval.md
and plots to ``--out``. With ``--gate`` it exits 3 when a threshold fails, naming each on stderr; it exits 1
when the run itself broke (service unreachable, every call failed, unreadable golden set or data), 2 for a
bad ``--threshold`` / ``--budget`` / rater sheet.

Global: ``--target`` (default ``$MANGAASSIST_TARGET`` or localhost:50051), ``--token`` (default
``$MANGAASSIST_TOKEN``), ``--timeout`` seconds. Errors print ``error: CODE (reason): details`` to stderr
and exit with status 1 (2 for usage errors).

The service itself is run by ``python -m server`` (server/__main__.py): ``clients/`` never imports ``server/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Iterable, Iterator, Sequence, TextIO

from google.protobuf.json_format import MessageToDict

from clients.errors import MangaAssistError

CLASSIFY_BATCH = 64


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mangaassist", description="MangaAssist gRPC client")
    p.add_argument("--target", default=os.environ.get("MANGAASSIST_TARGET", "localhost:50051"))
    p.add_argument("--token", default=os.environ.get("MANGAASSIST_TOKEN"))
    p.add_argument("--timeout", type=float, default=10.0, help="per-call deadline in seconds")
    sub = p.add_subparsers(dest="command", required=True)

    chat = sub.add_parser("chat", help="ask one question")
    chat.add_argument("message")
    chat.add_argument("--session", default="")
    chat.add_argument("--customer", default="", help="the end customer the call acts for (order lookups)")
    chat.add_argument("--stream", action="store_true", help="print answer text as it streams")
    chat.add_argument("--json", action="store_true", help="print the whole response as JSON")

    classify = sub.add_parser("classify", help="classify one message per input line")
    classify.add_argument("--file", help="input file (default: stdin)")
    classify.add_argument("--batch", type=int, default=CLASSIFY_BATCH)

    retrieve = sub.add_parser("retrieve", help="top-k chunks for a query")
    retrieve.add_argument("query")
    retrieve.add_argument("--k", type=int, default=0, help="how many (0 = the service default)")
    retrieve.add_argument("--no-rerank", action="store_true")
    retrieve.add_argument("--json", action="store_true")

    health = sub.add_parser("health", help="gRPC health check")
    health.add_argument("--service", default="", help='"", liveness, readiness or mangaassist.v1.MangaAssist')

    sub.add_parser("describe", help="model versions, limits, budgets, tiers")

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
    if argv[:1] == ["model"]:  # an operator tool on the build side's registry (model_repository/lifecycle)
        from model_repository.lifecycle.cli import main as model_main

        return model_main(argv[1:], stdout or sys.stdout)
    if argv[:1] == ["retrain"]:  # = `mangaassist model retrain ...` (the flywheel's last step)
        from model_repository.lifecycle.cli import main as model_main

        return model_main(argv, stdout or sys.stdout)
    if argv[:1] == ["drift"]:  # runs `python -m server.drift ...`: the service side's reports over its traffic log
        import subprocess

        return subprocess.call([sys.executable, "-m", "server.drift", *argv[1:]])
    args = _parser().parse_args(argv)
    out = stdout or sys.stdout
    if args.command == "eval" and args.challenger:
        return _gate_version(args, out)
    if args.command == "eval":
        return _eval(args, out)
    if args.command == "eval-conversations":
        from clients.evaluation.conversations import run as run_conversations

        return run_conversations(args.target, args.conversations, args.out, token=args.token, timeout=args.timeout,
                                 concurrency=args.concurrency, limit=args.limit, out=out,
                                 openworld=not args.no_openworld)
    from clients.sdk import MangaAssistClient

    try:
        with MangaAssistClient(args.target, token=args.token, timeout=args.timeout) as client:
            if args.command == "chat":
                return _chat(client, args, out)
            if args.command == "classify":
                source = open(args.file, encoding="utf-8") if args.file else (stdin or sys.stdin)
                try:
                    return _classify(client, source, args.batch, out)
                finally:
                    if args.file:
                        source.close()
            if args.command == "retrieve":
                reply = client.retrieve(args.query, top_k=args.k, rerank=not args.no_rerank)
                if args.json:
                    _print_json(reply, out)
                else:
                    for i, c in enumerate(reply.chunks, 1):
                        print(f"{i}. [{c.score:.3f}] {c.source_type} {c.doc_id}: {_short(c.text)}", file=out)
                    if reply.degraded:
                        print(f"(degraded: {', '.join(reply.degraded)})", file=out)
                return 0
            if args.command == "health":
                status = client.health(args.service)
                print(status, file=out)
                return 0 if status == "SERVING" else 1
            if args.command == "describe":
                _print_json(client.describe(), out)
                return 0
    except MangaAssistError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    raise AssertionError(f"unhandled command {args.command}")


def _chat(client, args, out: TextIO) -> int:
    if args.stream:
        final = None
        for item in client.chat_stream(args.message, session_id=args.session, customer_id=args.customer):
            if item.HasField("final"):
                final = item.final
            elif not args.json:
                print(item.delta, end="", file=out, flush=True)
        reply = final
        if not args.json:
            print(file=out)
    else:
        reply = client.chat(args.message, session_id=args.session, customer_id=args.customer)
    if reply is None:
        print("error: the stream ended without a final message", file=sys.stderr)
        return 1
    if args.json:
        _print_json(reply, out)
        return 0
    if not args.stream:
        print(reply.answer, file=out)
    for card in reply.cards:
        stock = "in stock" if card.in_stock else "out of stock"
        print(f"  - {card.title} [{card.asin}] {card.price:.2f} {card.currency}, {stock}", file=out)
    extra = f"intent={reply.intent or '?'} ({reply.intent_confidence:.2f}) tier={reply.tier}"
    if reply.degraded:
        extra += f" degraded={','.join(reply.degraded)}"
    print(f"({extra})", file=out)
    return 0


def _classify(client, lines: Iterable[str], batch: int, out: TextIO) -> int:
    for texts in _batches((line.rstrip("\n") for line in lines), batch):
        reply = client.classify(texts)
        for text, r in zip(texts, reply.results):
            row = {"text": text, "intent": r.intent, "confidence": round(r.confidence, 4), "rule": r.rule or None}
            print(json.dumps(row, ensure_ascii=False), file=out, flush=True)
    return 0


def _batches(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


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
    from clients.evaluation import EvalOptions, run_eval

    return run_eval(
        EvalOptions(
            target=args.target, token=args.token, golden=args.golden, data=args.data, summary=args.summary,
            out=args.out, gate=args.gate, thresholds=args.threshold, budgets=args.budget, concurrency=args.concurrency,
            timeout=args.eval_timeout or args.timeout, limit=args.limit, filter_intent=args.filter_intent,
            per_intent=args.per_intent,
            stream_sample=args.stream_sample, export_raters=args.export_raters, import_raters=args.import_raters,
            seed=args.seed,
        ),
        out,
    )


def _print_json(message, out: TextIO) -> None:
    print(json.dumps(MessageToDict(message, preserving_proto_field_name=True), indent=2, ensure_ascii=False), file=out)


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
