"""The serving-speed comparison, one command (issue 11 #5):

    python -m benchmarks.speed [--concurrency 1,8,32] [--seconds 4] [--build-dir .build] [--out benchmarks/results/speed]

On the intent classifier and the 200 hand-written messages, in one run on one machine:

1. **in-process ONNX Runtime** (the ceiling): the served file, served session options, batch 1 and the best of
   8/16/32 (``benchmarks.perf_analyzer.ceiling``, spin-waiting on and off, the faster);
2. **Triton, dynamic batching on**: the shipped repository (request-path models), ``intent_classifier`` (text in)
   driven by the real ``perf_analyzer`` (``benchmarks.perf_analyzer.sweep.run_point``);
3. **Triton, dynamic batching off**: the same models assembled without ``dynamic_batching``;
4. **the service's Classify** (one text per call, production budgets) in front of (2), its own process;
5. **plain gRPC + ONNX Runtime**, no batcher (``benchmarks.speed.servers plain``);
6. **naive FastAPI + transformers**, one PyTorch forward per request (``benchmarks.speed.servers naive``).

(4)-(6) are driven by the same closed-loop Python client (``closed_loop.py``), (2)-(3) by perf_analyzer. Every
stack is up at once and measured in ``--rounds`` interleaved rounds (stack by stack, concurrency by
concurrency); each figure is the median over the rounds, so load from neighbours on a shared machine falls on
every stack alike; the ceiling is measured in every round too (the servers idle meanwhile). Also
the lone-request breakdown (``breakdown.py``). Writes ``speed.json``, ``speed.md`` (table, ratios against the
issue's targets, breakdown) and ``speed_throughput_vs_p99.png`` into ``--out``. Ratios, not absolutes: every
process shares the machine's cores (and, in development, with other people's work).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from benchmarks import common
from benchmarks import speed
from benchmarks.perf_analyzer.inputs import Workloads
from benchmarks.speed import breakdown, closed_loop

log = logging.getLogger("benchmarks.speed")

CLASSIFIER_MODELS = ("intent_classifier", "intent_tokenizer", "intent_classifier_onnx")
SERVICE_MODELS = ("intent_classifier", "query_embedder", "embedding_adapter", "reranker")
STACKS = {
    "triton_on": "Triton, dynamic batching on (perf_analyzer)",
    "triton_off": "Triton, dynamic batching off (perf_analyzer)",
    "service": "the service's Classify RPC, one text per call",
    "plain_grpc": "plain gRPC + ONNX Runtime, no batcher",
    "naive": "naive FastAPI + transformers",
}


def stack_name(key: str) -> str:
    if key.startswith("triton_delay_"):
        return f"Triton, batching on, max_queue_delay {key.split('_')[-1]} (perf_analyzer)"
    if key.startswith("triton_tokdelay_"):
        return f"Triton, batching on, tokenizer max_queue_delay {key.split('_')[-1]} (perf_analyzer)"
    return STACKS[key]


def delay_variant(build: Path, dest: Path, delay_us: int,
                  models: tuple[str, ...] = ("intent_tokenizer", "intent_classifier_onnx"), flavour: str = "cpu") -> Path:
    """The classifier's shipped batching-on configs with ``max_queue_delay_microseconds`` set to ``delay_us`` (a
    scratch copy: the build is not touched)."""
    import re

    from model_repository.build import Builder

    repo = Builder(build).assemble(flavour, dest, models=CLASSIFIER_MODELS)
    for model in models:
        cfg = repo / model / "config.pbtxt"
        cfg.write_text(re.sub(r"max_queue_delay_microseconds: \d+", f"max_queue_delay_microseconds: {delay_us}", cfg.read_text()))
    return repo


class HandwrittenWorkloads(Workloads):
    """The perf_analyzer workloads, with the hand-written messages as the intent texts."""

    def __init__(self, texts: Sequence[str], repo: Path) -> None:
        super().__init__(repo, repo, limit=len(texts))
        self._cache["intents"] = list(texts)


# ------------------------------------------------------------------------------------------ measurements
def ceiling(repo: Path, texts: Sequence[str], seconds: float, providers: Sequence[str] = ("CPUExecutionProvider",)
            ) -> dict[str, Any]:
    from benchmarks.perf_analyzer.ceiling import measure_ceiling

    model = "intent_classifier_onnx"
    return measure_ceiling(model, repo / model / "1" / "model.onnx", HandwrittenWorkloads(texts, repo),
                           batch_sizes=(1, 8, 32), seconds=seconds, providers=providers)


def ceiling_providers(flavour: str) -> tuple[str, ...]:
    """ONNX Runtime's providers for the in-process ceiling: the GPU flavour's is CUDA when this ONNX Runtime has
    it (onnxruntime-gpu), else the CPU -- said in the plan and the result, never silently."""
    if flavour != "gpu":
        return ("CPUExecutionProvider",)
    import onnxruntime as ort

    have = ort.get_available_providers()
    return ("CUDAExecutionProvider", "CPUExecutionProvider") if "CUDAExecutionProvider" in have else ("CPUExecutionProvider",)


def plan(args: argparse.Namespace, build: Path) -> dict[str, Any]:
    """What a run would start and measure, without starting anything (``--dry-run``): the repository of the
    flavour, each served model's rendered execution (backend, instance kind and count, batching), the stacks,
    the concurrency points and the in-process ceiling's providers. A GPU node runs the same command without
    ``--dry-run``; this keeps that path exercised on CPU."""
    from model_repository import spec

    configs = spec.render(args.flavour)
    models = {}
    for name in (*CLASSIFIER_MODELS, *SERVICE_MODELS):
        cfg = configs.get(name)
        if cfg is None:
            continue
        groups = [{"kind": spec.mc.ModelInstanceGroup.Kind.Name(g.kind), "count": g.count} for g in cfg.instance_group]
        batching = cfg.dynamic_batching if cfg.HasField("dynamic_batching") else None
        accelerators = [a.name for a in cfg.optimization.execution_accelerators.gpu_execution_accelerator]
        models[name] = {"backend": cfg.backend or cfg.platform, "instances": groups, "accelerators": accelerators,
                        "max_queue_delay_us": batching.max_queue_delay_microseconds if batching else None}
    stacks = args.stacks.split(",")
    return {
        "flavour": args.flavour, "repository": str(build / "triton" / args.flavour),
        "repository_built": (build / "triton" / args.flavour / "intent_classifier_onnx").is_dir(),
        "models": models, "stacks": {k: STACKS[k] for k in stacks if k in STACKS},
        "queue_delay_variants_us": args.queue_delay_us, "concurrency": args.concurrency, "rounds": args.rounds,
        "ceiling_providers": list(ceiling_providers(args.flavour)),
    }


def perf_runner(url: str, texts: Sequence[str], scratch: Path, measurement_ms: int) -> Callable[[int], dict[str, Any] | None]:
    """c -> one perf_analyzer point on ``intent_classifier`` (text in) at ``url`` (None when it failed)."""
    from benchmarks.perf_analyzer.binary import perf_analyzer_binary, perf_analyzer_env
    from benchmarks.perf_analyzer.inputs import write_input_data
    from benchmarks.perf_analyzer.sweep import run_point

    rows = [{"TEXT": np.array([t], dtype=object)} for t in texts]
    input_json = write_input_data(rows, scratch / "handwritten_text.json")
    binary, env = perf_analyzer_binary(), perf_analyzer_env()

    def point(c: int) -> dict[str, Any] | None:
        try:
            p = run_point(binary, env, "intent_classifier", url, c, input_json, scratch,
                          measurement_ms=measurement_ms, stability=25.0, max_trials=4)
        except (RuntimeError, subprocess.TimeoutExpired) as err:
            log.error("perf_analyzer c=%d: %s", c, err)
            return None
        return {k: p.get(k) for k in ("concurrency", "throughput", "p50_ms", "p99_ms", "stable", "server_queue_ms")}

    return point


def loop_runner(make: Any, texts: Sequence[str], seconds: float) -> Callable[[int], dict[str, Any]]:
    """c -> one closed-loop point (``closed_loop.run``)."""
    return lambda c: asyncio.run(closed_loop.run(make, texts, concurrency=c, seconds=seconds))


def rounds(runners: Mapping[str, Callable[[int], dict[str, Any] | None]], concurrency: Sequence[int], n: int) -> dict[str, Any]:
    """Every stack at every concurrency, ``n`` times over, interleaved stack by stack (neighbours' load on a
    shared machine comes and goes: interleaving spreads it over every stack). Per point: the median of the
    rounds' throughput, p50 and p99, and every round's numbers."""
    raw: dict[str, dict[int, list[dict[str, Any]]]] = {k: {c: [] for c in concurrency} for k in runners}
    for r in range(n):
        for key, run_point in runners.items():
            for c in concurrency:
                with common.quiet_round(f"round {r + 1} {key} c={c}") as q:
                    p = run_point(c)
                if p is None:
                    continue
                p["quiet"] = q.quiet
                raw[key][c].append(p)
                log.info("round %d %-10s c=%-3d %8.1f /s  p50 %7.2f ms  p99 %7.2f ms%s", r + 1, key, c, p["throughput"],
                         p["p50_ms"], p["p99_ms"], f"  errors {p['errors']}" if p.get("errors") else "")
    series: dict[str, list[dict[str, Any]]] = {}
    for key, by_c in raw.items():
        series[key] = [median_point(c, pts) for c, pts in by_c.items() if pts]
    return series


def best_ceiling(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The rounds' ceilings as one: per batch size the best round (a ceiling is what the model can do; on cores
    shared with neighbours a round can halve it -- measured here: b=8 at 161, 171 and 347 rows/s), and the best
    batch size of those."""
    if not runs:
        return None
    rows = {b: max(r["rows_per_s"][b] for r in runs) for b in runs[0]["rows_per_s"]}
    top = max(rows, key=rows.get)
    return {**runs[0], "rows_per_s": rows, "best_batch": int(top), "best_rows_per_s": rows[top],
            "rounds": [r["rows_per_s"] for r in runs]}


def median_point(c: int, pts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    errors: dict[str, int] = {}
    for p in pts:
        for k, v in (p.get("errors") or {}).items():
            errors[k] = errors.get(k, 0) + v
    return {
        "concurrency": c,
        "throughput": round(float(np.median([p["throughput"] for p in pts])), 1),
        "p50_ms": round(float(np.median([p["p50_ms"] for p in pts])), 2),
        "p99_ms": round(float(np.median([p["p99_ms"] for p in pts])), 2),
        "errors": errors,
        "quiet": all(p.get("quiet", True) for p in pts),
        "rounds": [{k: p.get(k) for k in ("throughput", "p50_ms", "p99_ms", "quiet")} for p in pts],
    }


@contextlib.contextmanager
def server_process(kind: str, port: int, build_dir: Path, log_path: Path):
    """``python -m benchmarks.speed.servers kind`` until the block ends (SIGTERM, then SIGKILL)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(common.ROOT)}
    with log_path.open("wb") as logf:
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.speed.servers", kind, "--port", str(port),
                                 "--build-dir", str(build_dir)], cwd=common.ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT)
    try:
        wait_ready(kind, port, proc, log_path)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_ready(kind: str, port: int, proc: subprocess.Popen, log_path: Path, timeout_s: float = 180.0) -> None:
    make = closed_loop.http_classify("127.0.0.1", port) if kind == "naive" else closed_loop.grpc_classify(f"127.0.0.1:{port}", 2.0)

    async def probe() -> None:
        call, close = await make()
        try:
            await call("is volume 3 in stock")
        finally:
            await close()

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            asyncio.run(probe())
            return
        except Exception:  # noqa: BLE001 -- not up yet
            time.sleep(0.5)
    raise RuntimeError(f"{kind} server not ready after {timeout_s:.0f}s: {log_path.read_text()[-2000:]}")


# ------------------------------------------------------------------------------------------ summary
def best(points: Sequence[Mapping[str, Any]], min_concurrency: int = 1) -> Mapping[str, Any] | None:
    ok = [p for p in points if p["concurrency"] >= min_concurrency and p.get("throughput")]
    return max(ok, key=lambda p: p["throughput"]) if ok else None


def at(points: Sequence[Mapping[str, Any]], c: int) -> Mapping[str, Any] | None:
    return next((p for p in points if p["concurrency"] == c), None)


def ratios(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each as measured: (what, value, target, met)."""
    series = result["series"]
    ceil = result["ceiling"]
    out: list[dict[str, Any]] = []

    def add(what: str, value: float | None, target: str, met: bool | None) -> None:
        out.append({"what": what, "value": None if value is None else round(value, 2), "target": target, "met": met})

    variants = [k for k in series if k.startswith(("triton_delay_", "triton_tokdelay_"))]
    for key in ("triton_on", *variants, "triton_off", "service", "plain_grpc", "naive"):
        top = best(series.get(key, []))
        if top and ceil:
            pct = 100 * top["throughput"] / ceil["best_rows_per_s"]
            add(f"{stack_name(key)} at its best concurrency (c={top['concurrency']}) as % of the in-process ceiling",
                pct, ">= 90%", pct >= 90)
    b1 = ceil["rows_per_s"].get("1") if ceil else None
    for key in ("triton_on", *variants, "triton_off", "service", "plain_grpc"):
        lone = at(series.get(key, []), 1)
        if lone and b1:
            over = lone["p50_ms"] - 1000.0 / b1
            add(f"{stack_name(key)}: lone request p50 over in-process batch-1 latency (ms)", over, "<= 1 ms", over <= 1.0)
    naive = series.get("naive", [])
    for key in ("triton_on", *variants, "service", "plain_grpc"):
        mine = series.get(key, [])
        for c in sorted({p["concurrency"] for p in mine if p["concurrency"] >= 8}):
            a, n = at(mine, c), at(naive, c)
            if a and n and n["throughput"]:
                x = a["throughput"] / n["throughput"]
                add(f"{stack_name(key)} / naive, throughput at c={c} (p99 {a['p99_ms']:.0f} vs {n['p99_ms']:.0f} ms)", x,
                    ">= 10x at <= its p99", x >= 10 and a["p99_ms"] <= n["p99_ms"])
    off = series.get("triton_off", [])
    for p in series.get("triton_on", []):
        o = at(off, p["concurrency"])
        if o and o["throughput"]:
            add(f"batching on / off, throughput at c={p['concurrency']}", p["throughput"] / o["throughput"], "(> 1 under load)", None)
    return out


def render(result: Mapping[str, Any]) -> str:
    ceil = result["ceiling"]
    lines = [f"# Serving speed: the intent classifier, {result['messages']} hand-written messages\n",
             f"Command: `{result['command']}`  ",
             f"Machine: {result['device'].get('cpu_model', '?')}, {result['device'].get('cpu_count', '?')} cores, "
             f"load average at start {result['device'].get('load_average_at_start', '?')}; started {result['started']}. "
             f"Each figure: the median of {result['settings'].get('rounds', 1)} interleaved rounds.\n"]
    conc = result["settings"]["concurrency"]
    headers = ["stack", *[f"c={c} infer/s" for c in conc], *[f"c={c} p50 / p99 ms" for c in conc], "errors"]
    rows = []
    if ceil:
        rows.append(["in-process ONNX Runtime (ceiling)",
                     *[f"b=1: {ceil['rows_per_s']['1']:,.0f} rows/s; best (b={ceil['best_batch']}): "
                       f"{ceil['best_rows_per_s']:,.0f} rows/s" if i == 0 else "" for i in range(len(conc))],
                     *[f"{1000 / ceil['rows_per_s']['1']:.2f} (b=1 mean)" if i == 0 else "" for i in range(len(conc))], ""])
    for key in result["series"]:
        name = stack_name(key)
        pts = result["series"].get(key)
        if not pts:
            continue
        cells_t, cells_l = [], []
        for c in conc:
            p = at(pts, c)
            cells_t.append(common.fmt(p["throughput"]) if p else "—")
            cells_l.append(f"{common.fmt(p['p50_ms'])} / {common.fmt(p['p99_ms'])}" if p else "—")
        errs = sum(sum((p.get("errors") or {}).values()) for p in pts)
        rows.append([name, *cells_t, *cells_l, str(errs)])
    lines.append(common.markdown_table(headers, rows))
    lines.append("\n## Against the issue's targets (ratios from this run)\n")
    lines.append(common.markdown_table(
        ["measure", "value", "target", "met"],
        [[r["what"], common.fmt(r["value"], 2), r["target"], {True: "yes", False: "**no**", None: ""}[r["met"]]]
         for r in result["ratios"]]))
    if result.get("breakdown"):
        lines.append("\n## " + breakdown.render(result["breakdown"]).lstrip("#").lstrip())
    lines.append("\nPlot: `speed_throughput_vs_p99.png`. Raw numbers: `speed.json`.\n")
    return "\n".join(lines)


def plot(result: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for key in result["series"]:
        name = stack_name(key)
        pts = sorted(result["series"].get(key) or [], key=lambda p: p["concurrency"])
        pts = [p for p in pts if p.get("throughput") and not math.isnan(p["p99_ms"])]
        if not pts:
            continue
        line, = ax.plot([p["p99_ms"] for p in pts], [p["throughput"] for p in pts], "o-", label=name)
        for p in pts:
            ax.annotate(f"c={p['concurrency']}", (p["p99_ms"], p["throughput"]), textcoords="offset points",
                        xytext=(4, 3), fontsize=7, color=line.get_color())
    ceil = result.get("ceiling")
    if ceil:
        ax.axhline(ceil["best_rows_per_s"], color="gray", linestyle=":",
                   label=f"in-process ORT ceiling ({ceil['best_rows_per_s']:,.0f} rows/s, b={ceil['best_batch']})")
    ax.set_xscale("log")
    ax.set_xlabel("p99 latency (ms, log)")
    ax.set_ylabel("throughput (classifications/s)")
    ax.set_title("Intent classifier: throughput vs p99, 200 hand-written messages (labels = concurrency)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=common.DEFAULT_BUILD_DIR)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=3.0, help="per closed-loop point")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each point is their median")
    parser.add_argument("--measurement-ms", type=int, default=1500, help="perf_analyzer window")
    parser.add_argument("--ceiling-seconds", type=float, default=1.0)
    parser.add_argument("--stacks", default=",".join(STACKS), help="which of " + ",".join(STACKS))
    parser.add_argument("--queue-delay-us", type=lambda s: [int(x) for x in s.split(",") if x], default=[],
                        help="also Triton with the classifier's max_queue_delay_microseconds at these values (e.g. 0,500)")
    parser.add_argument("--tokenizer-delay-us", type=lambda s: [int(x) for x in s.split(",") if x], default=[],
                        help="also Triton with only the tokenizer step's max_queue_delay_microseconds at these values")
    parser.add_argument("--out", type=Path, default=speed.RESULTS)
    parser.add_argument("--summary-only", action="store_true", help="measure nothing: re-render --out/speed.json")
    parser.add_argument("--flavour", choices=("cpu", "gpu"), default="cpu",
                        help="the built repository to serve (.build/triton/<flavour>): gpu on a GPU node")
    parser.add_argument("--dry-run", action="store_true", help="print what would be started and measured; start nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    build = args.build_dir.resolve()
    out = args.out.resolve()
    if args.summary_only:
        return write_outputs(json.loads((out / "speed.json").read_text()), out)
    if args.dry_run:
        print(json.dumps(plan(args, build), indent=2))
        return 0
    scratch = common.DEFAULT_RESULTS_DIR / "tmp" / "speed"  # gitignored
    scratch.mkdir(parents=True, exist_ok=True)
    stacks = args.stacks.split(",")
    texts = speed.handwritten_texts()
    repo = build / "triton" / args.flavour
    providers = ceiling_providers(args.flavour)
    result: dict[str, Any] = {
        "command": "python -m benchmarks.speed " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "device": common.device_info(), "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "messages": len(texts), "settings": {"concurrency": args.concurrency, "seconds": args.seconds, "rounds": args.rounds,
                                             "measurement_ms": args.measurement_ms, "flavour": args.flavour,
                                             "ceiling_providers": list(providers)}, "series": {},
    }
    port = speed.PORT_BASE
    runners: dict[str, Callable[[int], dict[str, Any] | None]] = {}
    with contextlib.ExitStack() as stack:  # every stack up at once, measured in interleaved rounds
        triton = speed.start_triton(speed.request_path_repo(build, scratch, args.flavour), port, models=SERVICE_MODELS)
        stack.callback(triton.stop)
        if "triton_on" in stacks:
            runners["triton_on"] = perf_runner(triton.grpc_url, texts, scratch / "perf_on", args.measurement_ms)
        if "triton_off" in stacks:
            from model_repository.build import Builder

            off_repo = Builder(build).assemble(args.flavour, scratch / "repo_batching_off", models=CLASSIFIER_MODELS,
                                               dynamic_batching=False)
            off = stack.enter_context(speed.start_triton(off_repo, port + 3))
            runners["triton_off"] = perf_runner(off.grpc_url, texts, scratch / "perf_off", args.measurement_ms)
        for k, delay_us in enumerate(args.queue_delay_us):
            variant = delay_variant(build, scratch / f"repo_delay_{delay_us}us", delay_us, flavour=args.flavour)
            t = stack.enter_context(speed.start_triton(variant, port + 30 + 3 * k))
            runners[f"triton_delay_{delay_us}us"] = perf_runner(t.grpc_url, texts, scratch / f"perf_delay_{delay_us}", args.measurement_ms)
        for k, delay_us in enumerate(args.tokenizer_delay_us):
            variant = delay_variant(build, scratch / f"repo_tokdelay_{delay_us}us", delay_us, models=("intent_tokenizer",),
                                    flavour=args.flavour)
            t = stack.enter_context(speed.start_triton(variant, port + 45 + 3 * k))
            runners[f"triton_tokdelay_{delay_us}us"] = perf_runner(t.grpc_url, texts, scratch / f"perf_tokdelay_{delay_us}", args.measurement_ms)
        service_target = None
        if "service" in stacks:
            from benchmarks.service.stack import Stack

            svc = Stack(build, repo, scratch / "service", generous_budgets=False, triton=triton, port=port + 10).start()
            stack.callback(svc.stop)
            service_target = svc.target
            runners["service"] = loop_runner(closed_loop.grpc_classify(svc.target), texts, args.seconds)
        if "plain_grpc" in stacks:
            stack.enter_context(server_process("plain", port + 20, build, scratch / "plain.log"))
            runners["plain_grpc"] = loop_runner(closed_loop.grpc_classify(f"127.0.0.1:{port + 20}"), texts, args.seconds)
        if "naive" in stacks:
            stack.enter_context(server_process("naive", port + 21, build, scratch / "naive.log"))
            runners["naive"] = loop_runner(closed_loop.http_classify("127.0.0.1", port + 21), texts, args.seconds)
        if args.ceiling_seconds > 0:  # in every round too, so the ceiling sees the same neighbours as the stacks
            ceilings: list[dict[str, Any]] = []
            runners = {"ceiling": lambda c: ceilings.append(ceiling(repo, texts, args.ceiling_seconds, providers))
                       if c == args.concurrency[0] else None,
                       **runners}
        result["series"] = rounds(runners, args.concurrency, args.rounds)
        result["series"].pop("ceiling", None)
        result["ceiling"] = best_ceiling(ceilings) if args.ceiling_seconds > 0 else None
        log.info("lone-request breakdown")
        result["breakdown"] = breakdown.run(build, scratch, triton_url=triton.grpc_url, service_target=service_target, texts=texts)
    return write_outputs(result, out)


def write_outputs(result: dict[str, Any], out: Path) -> int:
    if (result.get("ceiling") or {}).get("rounds"):  # re-derived, so a re-render follows the current rule
        result["ceiling"] = best_ceiling([{**result["ceiling"], "rows_per_s": r} for r in result["ceiling"]["rounds"]])
    result["ratios"] = ratios(result)
    result.setdefault("quietness", common.quietness())  # a re-render keeps the measured run's
    out.mkdir(parents=True, exist_ok=True)
    common.write_json(out / "speed.json", result)
    plot(result, out / "speed_throughput_vs_p99.png")
    text = common.with_quietness(render(result), result["quietness"])
    (out / "speed.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
