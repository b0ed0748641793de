"""Drift demonstration on the real service: three "weeks" of traffic through ``python -m server --launch-triton``
(real Triton, classifier, embedder, guardrails, the traffic log in a SQLite file), then the drift reports.

* week A (reference) and week B (unshifted): held-out intent messages (.build/data/intents test + validation) at a
  fixed production mix;
* week C (shifted): return requests double, and 12% of turns are a new slang ("no cap", "bussin", "yeet it back")
  the classifier never saw.

Weeks are compressed in time (sent back to back); the reports compare them with explicit windows, B against A
(must stay quiet) and C against B (must fire). The golden probe (the classifier's accuracy on 200 golden
messages, through the service's Classify RPC, as the service's drift job measures it) feeds the decision table.
Then the daily cost report and the flywheel: the shifted week's low-confidence turns exported as Label Studio
tasks, "labelled" with each slang template's intent, imported as training rows.

    .venv/bin/python -m benchmarks.drift.simulate [--per-week 600] [--port 51320]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import random
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks import common
from server.traffic.cost import ensemble_names, parse_triton_metrics, triton_cost

OUT = common.DEFAULT_RESULTS_DIR / "drift"
BUILD = common.ROOT / ".build"
MIX = {"product_question": 0.22, "recommendation": 0.14, "order_status": 0.16, "return_refund": 0.08,
       "policy_faq": 0.10, "price_deal": 0.12, "chitchat": 0.12, "escalation": 0.06}
#: the new slang: (template, the intent a labeller gives it)
SLANG = [
    ("no cap is {s} vol {n} bussin or mid", "product_question"),
    ("{s} vol {n} lowkey mid ngl, tryna yeet it back no cap", "return_refund"),
    ("yo the {s} box set came busted fr, can i yeet it back", "return_refund"),
    ("{s} drip edition, cop or drop? is it bussin", "recommendation"),
    ("is the {s} vol {n} drop bussin enough to cop rn, what's the damage", "price_deal"),
    ("need smth bussin like {s}, no cap, what should i cop", "recommendation"),
    ("{s} vol {n} delulu ending, i wanna yeet it back for my bread", "return_refund"),
    ("fr fr is {s} vol {n} giving main character or mid", "product_question"),
]


def week(rng: random.Random, pool: dict[str, list[str]], series: list[str], n: int, *, returns_x: float = 1.0,
         slang: float = 0.0) -> list[tuple[str, str]]:
    """(message, the intent it was drawn for) x n."""
    mix = dict(MIX, return_refund=MIX["return_refund"] * returns_x)
    labels, weights = list(mix), list(mix.values())
    out = []
    for _ in range(n):
        if rng.random() < slang:
            template, label = rng.choice(SLANG)
            out.append((template.format(s=rng.choice(series), n=rng.randint(1, 12)), label))
        else:
            label = rng.choices(labels, weights)[0]
            out.append((rng.choice(pool[label]), label))
    return out


def send(target: str, messages: list[tuple[str, str]], tag: str, workers: int = 2) -> dict[str, float]:
    from clients.sdk import MangaAssistClient

    latencies: list[float] = []
    errors = 0

    def one(i: int, message: str) -> float | None:
        with_client = clients[i % workers]
        started = time.perf_counter()
        try:
            with_client.chat(message, session_id=f"{tag}-{i}")
        except Exception:  # noqa: BLE001 -- counted
            return None
        return (time.perf_counter() - started) * 1000

    clients = [MangaAssistClient(target, timeout=30.0) for _ in range(workers)]
    try:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            for ms in pool.map(lambda a: one(*a), enumerate(m for m, _ in messages)):
                if ms is None:
                    errors += 1
                else:
                    latencies.append(ms)
    finally:
        for c in clients:
            c.close()
    return {"chats": len(messages), "errors": errors, **common.latency_summary(latencies)}


def golden_accuracy(target: str, size: int = 200) -> float:
    from clients.sdk import MangaAssistClient
    from server.drift.monitor import load_golden

    golden = load_golden(str(BUILD / "golden" / "golden.jsonl"), size)
    right = 0
    with MangaAssistClient(target, timeout=30.0) as client:
        for i in range(0, len(golden), 32):
            chunk = golden[i : i + 32]
            reply = client.classify([m for m, _ in chunk])
            right += sum(r.intent == label for r, (_, label) in zip(reply.results, chunk))
    return right / len(golden)


def drift(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-m", "model_repository.lifecycle.drift", *args], cwd=common.ROOT, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-week", type=int, default=600)
    parser.add_argument("--port", type=int, default=51320)
    parser.add_argument("--metrics-port", type=int, default=51321)
    parser.add_argument("--index-dir", type=Path, default=BUILD / "index", help="FAISS index + catalog.sqlite")
    args = parser.parse_args(argv)

    from benchmarks.chaos import process

    rows = common.read_jsonl(BUILD / "data" / "intents" / "test.jsonl") + common.read_jsonl(BUILD / "data" / "intents" / "validation.jsonl")
    pool: dict[str, list[str]] = {}
    for r in rows:
        pool.setdefault(r["label"], []).append(r["text"])
    series = [json.loads(line)["series"] for line in (BUILD / "data" / "series.jsonl").read_text().splitlines() if line.strip()]
    rng = random.Random(16)
    weeks = {"A": week(rng, pool, series, args.per_week), "B": week(rng, pool, series, args.per_week),
             "C": week(rng, pool, series, args.per_week, returns_x=2.0, slang=0.12)}

    scratch = common.DEFAULT_RESULTS_DIR / "tmp" / "drift"
    scratch.mkdir(parents=True, exist_ok=True)
    db = scratch / "traffic.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    index = args.index_dir
    env = {"MANGAASSIST_TRAFFIC_SQLITE_PATH": str(db), "MANGAASSIST_RETRIEVAL_INDEX_DIR": str(index),
           "MANGAASSIST_RETRIEVAL_CATALOG_DB": str(index / "catalog.sqlite"), "MANGAASSIST_SERVER_METRICS_PORT": str(args.metrics_port),
           "MANGAASSIST_DRIFT_ENABLED": "false", "MANGAASSIST_LLM_LOCAL_WARMUP": "false",
           "MANGAASSIST_SESSIONS_RATE_PER_S": "0", "MANGAASSIST_COSTS_INTERVAL_S": "10",
           # traffic *distribution* is the subject here, not latency: on this shared 2-core box other runs' load
           # made the 50 ms classify/embed budgets degrade up to 17% of a week to classifier_unavailable (the drift
           # job holds its intent and confidence alarms through such an outage, but the demonstration should not
           # lean on that); the budgets are widened for the run
           "MANGAASSIST_BUDGETS_CLASSIFY_MS": "500", "MANGAASSIST_BUDGETS_EMBED_MS": "500",
           "MANGAASSIST_BUDGETS_ADAPTER_MS": "200", "MANGAASSIST_BUDGETS_TOTAL_MS": "2000"}
    process.free_port = lambda avoid=(): args.port  # this run's port (51300-51399), not a random one
    summary: dict = {"per_week": args.per_week, "device": common.device_info()}
    bounds = []
    # the request-path models only (no local LLM, no Triton hallucination scorer: the lexical one scores), as the
    # chaos and soak runs do: on 2 cores a loaded scorer and LLM starve the 50 ms classify budget and most turns
    # degrade to classifier_unavailable (seen in a first run: 79% of week A) -- an outage, not traffic drift
    build = process.request_path_build(BUILD, scratch / "build")
    with process.ServeProcess(build, scratch / "service.log", env) as serve:
        with __import__("clients.sdk", fromlist=["MangaAssistClient"]).MangaAssistClient(serve.target, timeout=30.0) as c:
            for message in ("hello", "is naruto vol 3 in stock?", "what's your return policy?"):
                c.chat(message, session_id="warmup")  # warm-up turns are logged before week A starts
        time.sleep(1.0)
        triton_url = _triton_metrics_url(serve)
        triton_before = parse_triton_metrics(_get(triton_url), time.monotonic())
        for name, messages in weeks.items():
            bounds.append(time.time())
            summary[f"week_{name}"] = send(serve.target, messages, name)
            time.sleep(1.5)  # the writer flushes; the next window starts after
        bounds.append(time.time())
        triton_text = _get(triton_url)
        (scratch / "triton_metrics.txt").write_text(triton_text)
        triton_after = parse_triton_metrics(triton_text, time.monotonic())
        # the run's Triton cost per inference: the instance price over each model's busy share (capacity: the
        # 2 cores this CPU Triton shares with the service and the load generator)
        cost = triton_cost(triton_before, triton_after, usd_per_hour=1.006, capacity=2.0,
                           ensembles=ensemble_names(build / "triton" / "cpu"))
        summary["triton_cost"] = {"usd_per_hour": 1.006, "capacity": 2.0, "seconds": round(cost.seconds, 1),
                                  "utilisation": round(cost.utilisation, 3),
                                  "per_inference_usd": {m: float(f"{v:.3g}") for m, v in cost.per_inference_usd.items()},
                                  "per_inference_full_usd": {m: float(f"{v:.3g}") for m, v in cost.per_inference_full_usd.items()},
                                  "inferences": cost.inferences}
        summary["golden_accuracy"] = golden_accuracy(serve.target)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{args.metrics_port}/metrics", timeout=5).read().decode()
        summary["service_metrics"] = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
                                      if line.startswith(("mangaassist_traffic_", "mangaassist_llm_", "mangaassist_triton_"))
                                      and " " in line and "_created" not in line
                                      and not line.startswith("#")}
    g = str(summary["golden_accuracy"])
    span = lambda a, b: f"{bounds[a]},{bounds[b]}"  # noqa: E731
    started = time.perf_counter()
    summary["unshifted"] = drift(["report", "--sqlite", str(db), "--reference", span(0, 1), "--current", span(1, 2),
                                  "--golden-accuracy", g, "--golden-baseline", g, "--out", str(OUT), "--name", "unshifted"])
    summary["report_seconds"] = round(time.perf_counter() - started, 2)
    summary["shifted"] = drift(["report", "--sqlite", str(db), "--reference", span(1, 2), "--current", span(2, 3),
                                "--golden-accuracy", g, "--golden-baseline", g, "--out", str(OUT), "--name", "shifted"])
    subprocess.run([sys.executable, "-m", "model_repository.lifecycle.drift", "cost", "--sqlite", str(db), "--out", str(OUT / "cost")],
                   cwd=common.ROOT, check=True, capture_output=True)
    summary["flywheel"] = flywheel(db, bounds[2], OUT / "labels")
    summary["windows_epoch"] = bounds
    common.write_json(OUT / "simulation.json", summary)
    print(json.dumps({k: summary[k] for k in ("unshifted", "shifted", "golden_accuracy", "flywheel")}, indent=2))
    return 0


def _get(url: str) -> str:
    return urllib.request.urlopen(url, timeout=5).read().decode()


def _triton_metrics_url(serve) -> str:
    """The embedded tritonserver's metrics endpoint, from its command line (it picks free ports)."""
    argv = Path(f"/proc/{serve.triton_pid()}/cmdline").read_bytes().split(b"\0")
    args = [a.decode() for a in argv]
    port = next(a.split("=", 1)[1] if "=" in a else args[i + 1] for i, a in enumerate(args) if a.startswith("--metrics-port"))
    return f"http://127.0.0.1:{port}/metrics"


def flywheel(db: Path, since: float, out: Path) -> dict:
    """Export the shifted week's low-confidence turns, label them (the slang template's intent, else the
    held-out message's own label), import them as training rows."""
    out.mkdir(parents=True, exist_ok=True)
    tasks_path, labelled_path, train_path = out / "tasks.json", out / "labelled.json", out / "train_extra.jsonl"
    train_path.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "model_repository.lifecycle.drift", "label-export", "--sqlite", str(db), "--since", str(since),
                    "--out", str(tasks_path), "--max", "100"], cwd=common.ROOT, check=True, capture_output=True)
    tasks = json.loads(tasks_path.read_text())
    truth = {}
    for r in common.read_jsonl(BUILD / "data" / "intents" / "test.jsonl") + common.read_jsonl(BUILD / "data" / "intents" / "validation.jsonl"):
        truth[r["text"]] = r["label"]
    import re

    slang = [(re.compile("^" + re.escape(t).replace(r"\{s\}", ".+").replace(r"\{n\}", r"\d+") + "$"), label) for t, label in SLANG]
    labelled, fixed, slang_tasks = [], 0, 0
    for i, task in enumerate(tasks):
        text = task["data"]["text"]
        label = truth.get(text) or next((lab for rx, lab in slang if rx.match(text)), None)
        slang_tasks += any(rx.match(text) for rx, _ in slang)
        if label is None:
            continue
        fixed += label != task["data"]["predicted_intent"]
        labelled.append({**task, "id": i, "annotations": [{"id": i, "was_cancelled": False, "result": [
            {"from_name": "intent", "to_name": "text", "type": "choices", "value": {"choices": [label]}}]}]})
    labelled_path.write_text(json.dumps(labelled, indent=2) + "\n")
    done = subprocess.run([sys.executable, "-m", "model_repository.lifecycle.drift", "label-import", str(labelled_path), "--out", str(train_path)],
                          cwd=common.ROOT, check=True, capture_output=True, text=True)
    return {"exported": len(tasks), "slang_tasks": slang_tasks, "labelled": len(labelled),
            "model_was_wrong": fixed, **json.loads(done.stdout)}


if __name__ == "__main__":
    sys.exit(main())
