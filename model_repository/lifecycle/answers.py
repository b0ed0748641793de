"""The gate's answer check: the golden answers given with the challenger classifier vs with the champion.

A sample of the golden set (picked by a hash of each record's id: the same records every run; ``--answer-sample``,
0 = all) is answered by the service's own request path with the classifier pinned to each version
(answering.py, run as ``python -m model_repository.lifecycle.answering`` in a child process: a fresh service
pipeline per gate run -- its own settings, metrics registry and event loop -- killed at ``timeout_s``), and each answer is
judged by :func:`model_repository.lifecycle.evaluation.dimensions.judge` on the dimensions the issue names -- factual correctness
(+ fabricated facts), relevance, completeness. The gate fails when the challenger's rate on the sample drops by
more than a tolerance (``answer_<dim>_drop``, default 0.02 = 2 points) or it fabricates more facts
(``answer_fabricated_increase``, default 0).

Cheap: only records the two versions route differently (another intent, or another route) are answered twice;
the others get the same answer from either version by construction, so they keep the champion's judgement
(the argument is in answering.py; its test is tests/unit/test_rollout_answers.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[2]
#: dimension -> the judged row's key (model_repository/lifecycle/evaluation/dimensions.py)
#: intent agreement is its own dimension: relevance judges the product / order / section an answer is about, so a
#: challenger that reads price questions as product questions can keep relevance and still answer the wrong ask
DIMENSIONS = {"factual": "factual", "relevance": "relevance", "intent": "intent_match", "completeness": "complete"}
#: the gate's answer checks: name -> (op, default) -- drops in rate points, fabricated facts as a count
CHECKS: dict[str, tuple[str, float]] = {
    **{f"answer_{d}_drop": ("<=", 0.02) for d in DIMENSIONS},
    "answer_fabricated_increase": ("<=", 0.0),
}
DEFAULT_SAMPLE = 200


@dataclass(frozen=True)
class AnswerOptions:
    golden: Path = Path(".build/golden/golden.jsonl")
    sample: int = DEFAULT_SAMPLE  # golden records answered (hashed pick; 0 = all)
    concurrency: int = 4
    service_config: Path | None = None  # the service's config.yaml (routing, guardrails, retrieval paths)
    timeout_s: float = 900.0


def sample_of(records: Sequence[Any], n: int) -> list[Any]:
    if n <= 0 or n >= len(records):
        return list(records)
    return sorted(records, key=lambda r: hashlib.sha1(r.id.encode()).hexdigest())[:n]


def answer_figures(triton_url: str, challenger: str, champion: str, data_dir: Path,
                   opts: AnswerOptions | None = None) -> dict[str, Any]:
    """Answer, judge, compare. ValueError without a golden set or when the answering process fails."""
    from model_repository.lifecycle.evaluation import dimensions
    from model_repository.lifecycle.evaluation.facts import StoreFacts

    opts = opts or AnswerOptions()
    if not Path(opts.golden).is_file():
        raise ValueError(f"the gate judges answers on the golden set: {opts.golden} is missing "
                         "(python -m model_repository build writes it)")
    records = sample_of(dimensions.load_golden(opts.golden), opts.sample)
    with tempfile.TemporaryDirectory(prefix="gate-answers-") as tmp:
        path = Path(tmp) / "records.jsonl"
        path.write_text("".join(json.dumps({"id": r.id, "message": r.message, "customer_id": r.customer_id}) + "\n"
                                for r in records), encoding="utf-8")
        cmd = [sys.executable, "-m", "model_repository.lifecycle.answering", "--triton", triton_url, "--champion", str(champion),
               "--challenger", str(challenger), "--records", str(path), "--concurrency", str(opts.concurrency)]
        if opts.service_config:
            cmd += ["--config", str(opts.service_config)]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=opts.timeout_s, env=env)
    if proc.returncode != 0:
        raise ValueError(f"answering the golden sample failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    got = json.loads(proc.stdout)
    facts = StoreFacts.load(data_dir)
    scorer = dimensions.rouge_scorer()
    by_id = {r.id: r for r in records}
    base = {i: judge_one(by_id[i], a, facts, scorer) for i, a in got["answers"][str(champion)].items()}
    new = dict(base) | {i: judge_one(by_id[i], a, facts, scorer) for i, a in got["answers"][str(challenger)].items()}
    return compare([base[r.id] for r in records], [new[r.id] for r in records], champion=str(champion),
                   challenger=str(challenger), differing=got["differing"], backends=got.get("backends", ""))


def judge_one(record: Any, answer: dict[str, Any], facts: Any, scorer: Any) -> dict[str, Any]:
    from google.protobuf.json_format import ParseDict
    from mangaassist.v1 import mangaassist_pb2 as pb

    from model_repository.lifecycle.evaluation import dimensions

    if "error" in answer:
        return dimensions.judge(dimensions.Outcome(record, error=answer["error"]), facts, scorer)
    return dimensions.judge(dimensions.Outcome(record, response=ParseDict(answer, pb.ChatResponse())), facts, scorer)


def compare(base_rows: Sequence[dict[str, Any]], new_rows: Sequence[dict[str, Any]], *, champion: str,
            challenger: str, differing: Sequence[str], backends: str = "") -> dict[str, Any]:
    """The answer figures (rates per version, drops, fabricated counts) and the records whose answers got worse."""

    def rate(rows: Sequence[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in rows if r.get(key) is not None]
        return round(sum(values) / len(values), 4) if values else None

    out: dict[str, Any] = {"records": len(base_rows), "differing": len(differing), "backends": backends,
                           "rates": {champion: {}, challenger: {}}}
    for dim, key in DIMENSIONS.items():
        a, b = rate(base_rows, key), rate(new_rows, key)
        out["rates"][champion][dim], out["rates"][challenger][dim] = a, b
        out[f"answer_{dim}_drop"] = None if a is None or b is None else round(a - b, 4)
    fab_a, fab_b = sum(r["fabricated"] for r in base_rows), sum(r["fabricated"] for r in new_rows)
    out["rates"][champion]["fabricated"], out["rates"][challenger]["fabricated"] = fab_a, fab_b
    out["answer_fabricated_increase"] = fab_b - fab_a
    out["errors"] = sum(bool(r.get("error")) for r in (*base_rows, *new_rows))
    # answers the pipeline marked degraded (a model call it gave up on): the comparison is then less fair -- reported
    out["degraded"] = sum(bool(r.get("degraded")) for r in (*base_rows, *new_rows))
    by_id = {r["id"]: r for r in base_rows}
    worse = []
    for r in new_rows:
        b = by_id[r["id"]]
        lost = [d for d, k in DIMENSIONS.items() if b.get(k) and r.get(k) is False]
        if lost or r["fabricated"] > b["fabricated"]:
            worse.append({"id": r["id"], "message": r["message"], "lost": lost,
                          "intent": [b["answered_intent"], r["answered_intent"]], "answer": r["answer"][:200]})
    out["worse"] = worse[:20]
    return out
