"""``mangaassist`` -- the client SDK's command line: the service's calls, nothing else.

    mangaassist chat "is chainsaw man vol 3 in stock?" [--json] [--session S] [--stream]
    mangaassist classify [--file FILE]        # one message per line (stdin by default) -> JSON lines
    mangaassist retrieve "return policy" [--k 5] [--no-rerank] [--json]
    mangaassist health [--service readiness]  # exit status 0 only when SERVING
    mangaassist describe

Global: ``--target`` (default ``$MANGAASSIST_TARGET`` or localhost:50051), ``--token`` (default
``$MANGAASSIST_TOKEN``), ``--timeout`` seconds. Errors print ``error: CODE (reason): details`` to stderr
and exit with status 1 (2 for usage errors).

The installed ``mangaassist`` script is the operator's command line (model_repository/lifecycle/console.py): these
commands plus the model lifecycle's (``eval``, ``model``, ``retrain``, ``drift``), which it adds to
:func:`build_parser`'s parser and hands the rest to :func:`run`. With the client alone installed (``pip install
mangaassist``) these commands are what works. ``clients/`` imports neither ``server/`` nor
``model_repository/`` (tests/unit/test_layering.py); the service itself is run by ``python -m server``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Iterable, Iterator, Sequence, TextIO

from google.protobuf.json_format import MessageToDict

from clients.errors import MangaAssistError

CLASSIFY_BATCH = 64


def build_parser() -> tuple[argparse.ArgumentParser, Any]:
    """The parser with the global options and the client commands, and its subcommand action (to add more to)."""
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
    return p, sub


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    args = build_parser()[0].parse_args(list(sys.argv[1:] if argv is None else argv))
    return run(args, stdin=stdin, stdout=stdout)


def run(args: argparse.Namespace, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """One client command (chat, classify, retrieve, health, describe) over the SDK; the exit status."""
    from clients.sdk import MangaAssistClient

    out = stdout or sys.stdout
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


def _print_json(message, out: TextIO) -> None:
    print(json.dumps(MessageToDict(message, preserving_proto_field_name=True), indent=2, ensure_ascii=False), file=out)


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


if __name__ == "__main__":
    sys.exit(main())
