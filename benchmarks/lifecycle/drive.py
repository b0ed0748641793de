"""Drive a running service through shadow -> canary -> refused files -> promotion, with a background caller, and
count what answered and what failed. The service must run with ``rollout.file`` = ``--rollout-file`` (docs/lifecycle.md,
"Model lifecycle"); the challenger must have passed the gate, ``--ungated`` must not have.

    python -m benchmarks.lifecycle.drive --target localhost:51210 --metrics http://localhost:51211/metrics \\
        --challenger 3 --ungated 2 -- --repository B/triton/cpu --lifecycle-dir B/lifecycle --rollout-file B/rollout.yaml
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.request
from pathlib import Path

import grpc
from mangaassist.v1 import mangaassist_pb2 as pb
from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

from contracts.models import VERSIONED_CLASSIFIER
from model_repository.lifecycle.cli import main as model_cli

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lifecycle.drive", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="localhost:51210")
    p.add_argument("--metrics", default="http://localhost:51211/metrics")
    p.add_argument("--stable", default="1")
    p.add_argument("--challenger", required=True)
    p.add_argument("--ungated", help="a version the gate failed (its canary file must be refused)")
    p.add_argument("--messages", type=Path, default=ROOT / ".build" / "data" / "intents" / "test.jsonl")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("lifecycle", nargs=argparse.REMAINDER, help="-- then the `mangaassist model` location flags")
    args = p.parse_args(argv)
    lifecycle = [a for a in args.lifecycle if a != "--"]
    rollout_file = Path(lifecycle[lifecycle.index("--rollout-file") + 1])
    messages = [json.loads(line)["text"] for line in args.messages.read_text().splitlines() if line.strip()]
    return asyncio.run(drive(args, lifecycle, rollout_file, messages))


async def drive(args: argparse.Namespace, lifecycle: list[str], rollout_file: Path, messages: list[str]) -> int:
    def metrics(prefix: str) -> list[str]:
        text = urllib.request.urlopen(args.metrics).read().decode()
        return [line for line in text.splitlines() if line.startswith(prefix)]

    errors: list[str] = []
    latencies: list[float] = []
    async with grpc.aio.insecure_channel(args.target) as channel:
        stub = pb_grpc.MangaAssistStub(channel)

        async def chat(session: str, i: int) -> pb.ChatResponse | None:
            started = time.perf_counter()
            try:
                reply = await stub.Chat(pb.ChatRequest(session_id=session, message=messages[i % len(messages)]), timeout=30)
                latencies.append(time.perf_counter() - started)
                return reply
            except grpc.aio.AioRpcError as err:
                errors.append(str(err.code()))
                await asyncio.sleep(0.01)
                return None

        async def batch(prefix: str, n: int, offset: int) -> dict[str, int]:
            sem = asyncio.Semaphore(args.concurrency)

            async def one(i: int) -> pb.ChatResponse | None:
                async with sem:
                    return await chat(f"{prefix}-{i}", offset + i)

            replies = [r for r in await asyncio.gather(*(one(i) for i in range(n))) if r is not None and not r.rule_decided]
            answered = [dict(r.model_versions).get(VERSIONED_CLASSIFIER, "?") for r in replies]
            return {v: answered.count(v) for v in sorted(set(answered))}

        stop = False

        async def background() -> None:
            i = 0
            while not stop:
                await chat(f"bg-{time.time_ns()}", i)
                i += 1

        def cli(*command: str) -> int:
            return model_cli([*command, *lifecycle])

        bg = asyncio.create_task(background())
        print("shadow:", cli("rollout", "--stable", args.stable, "--shadow", args.challenger))
        await asyncio.sleep(2.5)
        print("  answered by", await batch("shadow", 40, 0))
        await asyncio.sleep(2)
        print("  ", metrics("mangaassist_shadow_calls_total"))
        print("canary 10 %:", cli("rollout", "--stable", args.stable, "--canary", f"{args.challenger}:10"))
        await asyncio.sleep(2.5)
        print("  answered by", await batch("canary", 200, 1000))
        bad = [{"stable": args.stable, "canary": {"version": args.challenger, "percent": 150}}]
        if args.ungated:
            bad.append({"stable": args.stable, "canary": {"version": args.ungated, "percent": 10}})
        for doc in bad:  # written behind the CLI's back: the service must refuse them itself
            rollout_file.write_text(json.dumps(doc))
            await asyncio.sleep(2)
        print("  refused:", metrics('mangaassist_rollout_changes_total{outcome="refused"}'))
        print("  answered by", await batch("after-refusals", 60, 2000))
        if args.ungated:
            print(f"promote {args.ungated}:", cli("promote", args.ungated))
        print(f"promote {args.challenger}:", cli("promote", args.challenger))
        await asyncio.sleep(2.5)
        print("  answered by", await batch("promoted", 60, 3000))
        stop = True
        await bg
    latencies.sort()
    print(f"chats {len(latencies)}, errors {len(errors)} {sorted(set(errors))}, p50 "
          f"{latencies[len(latencies) // 2] * 1000:.1f} ms, p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
