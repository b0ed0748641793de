"""One chat's rerank call in-process: fp32 vs per-channel int8 vs the distilled student (issue 29 item 1).

Every reranker file the build made, each in its own ONNX Runtime session with the served options (2 intra-op
threads): the fp32 teacher (``models/reranker/onnx/model.fp32.onnx``), the int8 step's per-channel file
(``models/reranker_int8``) and the two student files (``models/reranker_student``: ORT-optimised fp32 and
per-channel int8). A call is a real chat's batch: a held-out query against its 10 first-stage candidates,
padded to the tokenizer's top bucket (64 tokens), cycling over ``--chats`` chats. Rounds are interleaved (the
order rotates each round) so load from neighbours falls on every variant alike; each figure is pooled over
the rounds, with each round's p50 and the median over rounds of each variant's p50 over fp32's in the same
round. The machine's 1-minute load average and CPU steal are recorded before and after every round; a round
that did not start and end quiet (load average above ``--quiet-load``) is marked, and so is the table.
Quality figures (ordering agreement, Recall@3 fused, golden top-3) are the build gate's, read from the
student step's manifest.

    python -m benchmarks.speed.reranker_variants [--rounds 7] [--calls 40] [--chats 16] [--out benchmarks/results/speed]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common

log = logging.getLogger("benchmarks.speed")


def files(build: Path) -> dict[str, Path]:
    from model_repository import distill, quantize

    models = build / "models"
    out = {"fp32": models / "reranker" / "onnx" / "model.fp32.onnx",
           quantize.VARIANT: models / quantize.STEP / f"model.{quantize.VARIANT}.onnx"}
    out.update({v: models / distill.STEP / f"model.{v}.onnx" for v in distill.VARIANTS})
    return {k: p for k, p in out.items() if p.is_file()}


def cpu_times() -> tuple[float, float]:
    """(total, steal) jiffies of the machine since boot (``/proc/stat``; zeros where it cannot be read)."""
    try:
        parts = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0
    return sum(parts), parts[7] if len(parts) > 7 else 0.0


def chat_feeds(build: Path, chats: int) -> list[dict[str, np.ndarray]]:
    from transformers import AutoTokenizer

    from model_repository import export, spec
    from model_repository.build import Builder
    from model_repository.quantize import CANDIDATES
    from model_repository.training.common import read_jsonl
    from model_repository.training.retrieval import held_out_queries

    seq = next(t.max_length for t in spec.TOKENIZERS if t.name == "rerank_tokenizer")
    builder = Builder(build)
    docs = read_jsonl(builder.data / "documents.jsonl")
    queries = [g["query"] for g in held_out_queries(builder.data)[1][:chats]]
    rows, _ = builder.first_stage()(queries, CANDIDATES)
    tok = AutoTokenizer.from_pretrained(builder.models / "reranker" / "hf")
    feeds = []
    for q, row in zip(queries, rows):
        f = export.token_feeds(tok, [(q, docs[j]["text"]) for j in row], max_length=seq, batch_size=CANDIDATES)[0]
        feeds.append({k: np.pad(v, ((0, 0), (0, seq - v.shape[1]))) for k, v in f.items()})
    return feeds


def measure(sessions: dict[str, Any], feeds: list[dict[str, np.ndarray]], *, rounds: int, calls: int,
            quiet_load: float) -> dict[str, Any]:
    for sess in sessions.values():  # warm-up
        for f in feeds[:3]:
            sess.run(None, f)
    names = list(sessions)
    per_call: dict[str, list[float]] = {n: [] for n in names}
    per_round: list[dict[str, Any]] = []
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        load_before, (total0, steal0) = os.getloadavg()[0], cpu_times()
        p50: dict[str, float] = {}
        for name in order:
            ms = []
            for i in range(calls):
                t = time.perf_counter()
                sessions[name].run(None, feeds[i % len(feeds)])
                ms.append((time.perf_counter() - t) * 1000)
            per_call[name].extend(ms)
            p50[name] = round(float(np.median(ms)), 2)
        load_after, (total1, steal1) = os.getloadavg()[0], cpu_times()
        steal = round(100 * (steal1 - steal0) / (total1 - total0), 2) if total1 > total0 else 0.0
        quiet = load_before <= quiet_load and load_after <= quiet_load
        per_round.append({"order": order, "p50_ms": p50, "loadavg_before": round(load_before, 2),
                          "loadavg_after": round(load_after, 2), "steal_pct": steal, "quiet": quiet})
        log.info("round %d%s: %s (load %.2f -> %.2f, steal %.1f%%)", r, "" if quiet else " NOT QUIET", p50,
                 load_before, load_after, steal)
    summary = {}
    for name in names:
        v = per_call[name]
        rounds_p50 = [rd["p50_ms"][name] for rd in per_round]
        summary[name] = {
            "p50_ms": round(float(np.median(v)), 2), "p90_ms": round(float(np.percentile(v, 90)), 2),
            "round_p50_min_ms": min(rounds_p50), "round_p50_max_ms": max(rounds_p50),
            "ratio_to_fp32": round(float(np.median([rd["p50_ms"][name] / rd["p50_ms"]["fp32"] for rd in per_round])), 3),
            "calls": len(v),
        }
    return {"variants": summary, "rounds": per_round, "quiet": all(rd["quiet"] for rd in per_round)}


def render(payload: dict[str, Any]) -> str:
    d, gate = payload["device"], payload.get("gate") or {}
    rows = []
    for name, s in payload["result"]["variants"].items():
        q = gate.get(name, {})
        h, hw, g = q.get("held_out", {}), q.get("handwritten", {}), q.get("golden", {})
        rows.append([f"{name} (`{payload['files'][name]}`, {payload['file_mb'][name]} MB)", common.fmt(s["p50_ms"], 2),
                     common.fmt(s["p90_ms"], 2), f"{s['round_p50_min_ms']}-{s['round_p50_max_ms']}", f"{s['ratio_to_fp32']:.2f}",
                     common.fmt(h.get("ordering_agreement"), 4), common.fmt(hw.get("ordering_agreement"), 4),
                     common.fmt(h.get("recall@3_fused"), 4), common.fmt(g.get("top3_fused_same"), 4)])
    loads = [(rd["loadavg_before"], rd["loadavg_after"]) for rd in payload["result"]["rounds"]]
    quiet = payload["result"]["quiet"]
    return "\n".join([
        "# One chat's rerank call in-process: fp32 vs int8 vs the distilled student" + ("" if quiet else " -- NOT QUIET"),
        "",
        f"{d['cpu_model']} ({d['usable_cores']} usable cores), {d['timestamp_utc']}; {payload['rounds']} interleaved rounds x "
        f"{payload['calls']} calls per variant; a call = 10 pairs x 64 tokens of a real held-out chat; ONNX Runtime, "
        f"2 intra-op threads. Served CPU reranker: `{payload['served']}`.",
        f"Load average (1 min) before/after each round: {loads}; CPU steal per round: "
        f"{[rd['steal_pct'] for rd in payload['result']['rounds']]}%."
        + ("" if quiet else f" **Some rounds were not quiet (load average > {payload['quiet_load']}): the figures are marked.**"),
        f"Command: `{payload['command']}`",
        "",
        common.markdown_table(("reranker", "p50 ms", "p90 ms", "round p50 range", "p50 / fp32 (median of rounds)",
                               "ordering agreement, held-out (gap >= 1)", "same, hand-written", "Recall@3 fused, held-out",
                               "golden top-3 = fp32's"), rows),
        "",
        "Quality columns: the build gate's figures against the fp32 teacher (`models/reranker_student/manifest.json`; "
        "int8 and fp32 measured by the same step on the same queries).",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed.reranker_variants", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=40, help="calls per variant per round")
    parser.add_argument("--chats", type=int, default=16, help="distinct chats' batches cycled through")
    parser.add_argument("--quiet-load", type=float, default=1.0, help="1-min load average above which a round is marked")
    parser.add_argument("--build-dir", type=Path, default=common.DEFAULT_BUILD_DIR)
    parser.add_argument("--out", type=Path, default=common.DEFAULT_RESULTS_DIR / "speed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from model_repository import distill, export
    from model_repository.build import Builder

    build = args.build_dir.resolve()
    paths = files(build)
    sessions = {name: export.session(p) for name, p in paths.items()}
    feeds = chat_feeds(build, args.chats)
    result = measure(sessions, feeds, rounds=args.rounds, calls=args.calls, quiet_load=args.quiet_load)
    manifest = build / "models" / distill.STEP / "manifest.json"
    gate = json.loads(manifest.read_text())["report"] if manifest.is_file() else {}
    payload = {
        "device": common.device_info(),
        "command": "python -m benchmarks.speed.reranker_variants " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "rounds": args.rounds, "calls": args.calls, "quiet_load": args.quiet_load,
        "files": {k: str(p.relative_to(build)) for k, p in paths.items()},
        "file_mb": {k: round(p.stat().st_size / 2**20, 1) for k, p in paths.items()},
        "served": str(Builder(build).served_onnx("reranker", "cpu").relative_to(build)),
        "gate": {k: gate[k] for k in paths if k in gate},
        "result": result,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    common.write_json(args.out / "reranker_variants.json", payload)
    (args.out / "reranker_variants.md").write_text(render(payload) + "\n")
    print((args.out / "reranker_variants.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
