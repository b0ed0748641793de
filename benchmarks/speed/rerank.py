"""How often chats get the reranker (issue 11 #3): the served reranker against the fp32 one, same load, one run.

Two whole stacks run side by side, identical but for ``reranker_onnx``'s file: **served** (what the build's
repository serves: ``Builder.served_onnx("reranker")``, the per-channel int8 variant when the
``reranker_int8`` step chose it) and **fp32** (the reranker step's own pick). Each is a tritonserver with
the request-path models plus the service with its shipped settings (production budgets, the per-chat rerank
decision), template tier. Rounds alternate which stack goes first; in a round both get the same Poisson
arrivals and messages (``benchmarks.service.load.run_rate``, open loop) at ``--rate`` chats/s.

Per stack: of the chats that retrieved candidates (eligible), the share the reranker ordered within its
budget, pooled over the rounds and per round, plus e2e and rerank-stage latency. ``--eval`` then judges each
stack's answers on the golden set (``mangaassist eval --budget template=50 --concurrency 1``, one stack at a
time, reports in ``<out>/rerank_eval/<stack>/``).

    python -m benchmarks.speed.rerank [--rate 20] [--duration 20] [--rounds 3] [--base-port 51120] [--eval]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks import common

log = logging.getLogger("benchmarks.speed")

#: the models a template-tier chat calls (the ensembles with their steps)
REQUEST_PATH = ("intent_classifier", "intent_tokenizer", "intent_classifier_onnx", "query_embedder", "embed_tokenizer",
                "query_embedder_onnx", "embedding_adapter", "reranker", "rerank_tokenizer", "reranker_onnx")


def repositories(build_dir: Path, scratch: Path) -> dict[str, tuple[Path, str]]:
    """{"served": (repo, file served), "fp32": (repo, file served)}: request-path repositories that differ only in
    ``reranker_onnx``'s file."""
    import json

    from model_repository.build import Builder

    builder = Builder(build_dir)
    served_file = builder.served_onnx("reranker", "cpu")
    step = json.loads((builder.models / "reranker" / "manifest.json").read_text())["report"]["served_cpu_variant"]
    baseline = builder.models / "reranker" / "onnx" / f"model.{step}.onnx"
    out = {}
    for name, src in (("served", served_file), ("fp32", baseline)):
        repo = builder.assemble("cpu", scratch / name, models=REQUEST_PATH)
        target = repo / "reranker_onnx" / "1" / "model.onnx"
        target.unlink()
        os.link(src, target) if src.stat().st_dev == target.parent.stat().st_dev else target.write_bytes(src.read_bytes())
        out[name] = (repo, str(src.relative_to(build_dir)))
    return out


def set_instances(repo: Path, count: int, threads: int) -> None:
    """Rewrite ``reranker_onnx``'s CPU instance count and ONNX Runtime threads in an assembled repository."""
    from model_repository import spec

    path = repo / "reranker_onnx" / "config.pbtxt"
    cfg = spec.parse_pbtxt(path.read_text())
    cfg.instance_group[0].count = count
    cfg.parameters["intra_op_threads"].string_value = str(threads)
    path.write_text(spec.to_pbtxt(cfg))


def summarise(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pool one stack's rounds (``run_rate`` results)."""
    eligible = sum(r["rerank_eligible"] for r in rounds)
    applied = sum(r["rerank_applied"] for r in rounds)

    def median(path: tuple[str, ...]) -> float | None:
        values = []
        for r in rounds:
            v: Any = r
            for p in path:
                v = v.get(p) if isinstance(v, dict) else None
            if v is not None:
                values.append(v)
        return round(float(np.median(values)), 1) if values else None

    return {
        "eligible": eligible,
        "reranked": applied,
        "reranked_share": round(applied / eligible, 4) if eligible else None,
        "reranked_share_per_round": [r["rerank_applied_share"] for r in rounds],
        "ok": sum(r["outcomes"].get("OK", 0) for r in rounds),
        "sent": sum(r["sent"] for r in rounds),
        "e2e_p50_ms": median(("e2e", "p50_ms")),
        "e2e_p99_ms": median(("e2e", "p99_ms")),
        "rerank_p50_ms": median(("stages", "rerank", "p50_ms")),
        "rerank_p99_ms": median(("stages", "rerank", "p99_ms")),
        "degraded": {k: sum(r["degraded"].get(k, 0) for r in rounds) for k in sorted({k for r in rounds for k in r["degraded"]})},
    }


#: eval.json headline figures shown next to the load figures
ANSWER_METRICS = ("fabricated", "factual", "relevance", "completeness", "helpfulness", "rouge_l")


def golden_eval(target: str, out: Path) -> dict[str, Any]:
    """``mangaassist eval`` against ``target`` (docs/answers-and-evaluation.md's golden-set command); its summary figures."""
    import json
    import subprocess

    build = common.DEFAULT_BUILD_DIR
    cmd = [sys.executable, "-m", "model_repository.lifecycle.console", "--target", target, "eval", "--budget", "template=50", "--concurrency", "1", "--openworld", "",
           "--golden", str(build / "golden" / "golden.jsonl"), "--data", str(build / "data"),
           "--summary", str(build / "reports" / "summary.json"), "--out", str(out)]
    log.info("golden eval against %s -> %s", target, out)
    done = subprocess.run(cmd, cwd=common.ROOT, capture_output=True, text=True)
    if done.returncode not in (0, 3) or not (out / "eval.json").is_file():
        return {"error": f"exit {done.returncode}: {done.stderr[-400:]}"}
    summary = json.loads((out / "eval.json").read_text())["summary"]
    return {"gate_exit": done.returncode, "records": summary["records"], **summary["headline"], "degraded": summary["degraded"]}


def render(payload: dict[str, Any]) -> str:
    rows = []
    for name, s in payload["stacks"].items():
        rows.append([
            f"{name} (`{payload['files'][name]}`)", f"{s['reranked']}/{s['eligible']} = {100 * (s['reranked_share'] or 0):.1f}%",
            ", ".join(f"{100 * x:.0f}%" if x is not None else "—" for x in s["reranked_share_per_round"]),
            common.fmt(s["rerank_p50_ms"]), common.fmt(s["rerank_p99_ms"]), common.fmt(s["e2e_p50_ms"]), common.fmt(s["e2e_p99_ms"]),
            f"{s['ok']}/{s['sent']}", ", ".join(f"{k}: {v}" for k, v in s["degraded"].items()) or "—",
        ])
    d = payload["device"]
    return "\n".join([
        "# Reranker applied, served vs fp32 (same run, alternating rounds)",
        "",
        f"{d['cpu_model']} ({d['usable_cores']} usable cores), {d['timestamp_utc']}; {payload['rate']} chats/s, "
        f"{payload['rounds']} rounds x {payload['duration_s']} s per stack; shipped settings (production budgets, "
        f"per-chat rerank decision{', ' + ', '.join(payload['settings']) if payload.get('settings') else ''}), template tier; "
        f"load average at the start {payload['loadavg_start']}.",
        f"Command: `{payload['command']}`",
        "",
        common.markdown_table(("reranker", "reranked / eligible chats", "per round", "rerank p50 ms", "rerank p99 ms",
                               "e2e p50 ms", "e2e p99 ms", "ok / sent", "degraded"), rows),
        "",
        "Eligible: the chat retrieved candidates; reranked: the reranker ordered them within its budget. Latencies are"
        " medians over the rounds of each round's percentile.",
        *_answers(payload.get("answers") or {}),
    ])


def _answers(answers: dict[str, Any]) -> list[str]:
    if not answers:
        return []
    rows = [[name, *(common.fmt(a.get(m), 4) for m in ANSWER_METRICS), a.get("degraded", {}).get("rerank_skipped", 0),
             a.get("records", "—")] if "error" not in a else [name, a["error"]] for name, a in answers.items()]
    return ["", "Answers on the golden set (`mangaassist eval --budget template=50 --concurrency 1`, one stack at a time):", "",
            common.markdown_table(("reranker", *ANSWER_METRICS, "rerank_skipped", "records"), rows)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed.rerank", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="chats/s (default: half of the ~40/s saturation)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of arrivals per stack per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=10, help="sequential chats per stack before the first round")
    parser.add_argument("--base-port", type=int, default=51120, help="ports base..base+13 (two tritons + services)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="a service setting for both stacks, e.g. retrieval.rerank_top_n=8 (repeatable)")
    parser.add_argument("--served-instances", type=int, nargs=2, metavar=("COUNT", "THREADS"),
                        help="the served stack's reranker_onnx instances and ORT threads each (shipped: 1 2)")
    parser.add_argument("--eval", action="store_true", help="then judge each stack's answers on the golden set")
    parser.add_argument("--build-dir", type=Path, default=common.DEFAULT_BUILD_DIR)
    parser.add_argument("--out", type=Path, default=common.DEFAULT_RESULTS_DIR / "speed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from benchmarks.service.load import parse_overrides, run_rate
    from benchmarks.service.stack import Stack
    from clients.sdk import MangaAssistClient
    from server.triton_runtime import TritonServer

    build, out = args.build_dir.resolve(), args.out.resolve()
    scratch = common.DEFAULT_RESULTS_DIR / "tmp" / "speed_rerank"  # gitignored
    command = "python -m benchmarks.speed.rerank " + shlex.join(argv if argv is not None else sys.argv[1:])
    messages = common.intent_texts(build / "data", limit=1000)
    random.Random(0).shuffle(messages)
    repos = repositories(build, scratch)
    if args.served_instances:
        set_instances(repos["served"][0], *args.served_instances)
    loadavg = round(os.getloadavg()[0], 2)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in repos}
    with contextlib.ExitStack() as stack:
        targets = {}
        for i, (name, (repo, _)) in enumerate(repos.items()):
            port = args.base_port + 10 * i
            triton = stack.enter_context(TritonServer(repo, grpc_port=port, http_port=port + 1, metrics_port=port + 2,
                                                      startup_timeout_s=600))
            service = stack.enter_context(Stack(build, repo, scratch / f"service_{name}", generous_budgets=False,
                                                triton=triton, port=port + 3, overrides=parse_overrides(args.set)))
            targets[name] = service.target
            with MangaAssistClient(service.target, timeout=60.0) as client:
                for j in range(args.warmup):
                    client.chat(messages[j % len(messages)])
        started = time.perf_counter()
        for r in range(args.rounds):
            order = list(targets) if r % 2 == 0 else list(reversed(targets))
            for name in order:
                with common.quiet_round(f"round {r} {name}") as q:
                    res = asyncio.run(run_rate(targets[name], messages, args.rate, args.duration, timeout_s=10.0, seed=r))
                res["quiet"] = q.quiet
                log.info("round %d %-6s: reranked %s/%s, e2e p99 %.1f ms, degraded %s", r, name, res["rerank_applied"],
                         res["rerank_eligible"], res["e2e"]["p99_ms"], res["degraded"])
                results[name].append(res)
                time.sleep(2.0)  # let queues drain
        wall = time.perf_counter() - started
        answers = {name: golden_eval(target, out / "rerank_eval" / name) for name, target in targets.items()} if args.eval else {}
    payload = {
        "device": common.device_info(), "command": command, "rate": args.rate, "duration_s": args.duration,
        "rounds": args.rounds, "settings": args.set + (
            [f"served reranker_onnx: {args.served_instances[0]} instances x {args.served_instances[1]} threads"]
            if args.served_instances else []), "loadavg_start": loadavg, "wall_s": round(wall, 1),
        "files": {name: f for name, (_, f) in repos.items()},
        "stacks": {name: summarise(rs) for name, rs in results.items()},
        "answers": answers,
        "runs": results,
    }
    payload["quietness"] = common.quietness()
    out.mkdir(parents=True, exist_ok=True)
    common.write_json(out / "rerank.json", payload)
    (out / "rerank.md").write_text(common.with_quietness(render(payload), payload["quietness"]) + "\n")
    print((out / "rerank.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
