"""perf_analyzer output parsing, Triton statistics deltas, the summary table and the plot.

perf_analyzer's ``-f`` CSV has one header line and one row per concurrency level; latencies are in
microseconds. Columns seen with tritonclient 2.51 (gRPC, Triton service kind)::

    Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,
    Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency

(``Avg latency``, ``request/response`` and ``response wait`` appear with some options; everything after
the first blank line, e.g. ``--collect-metrics`` sections, is ignored.)
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from benchmarks.common import fmt, markdown_table
from benchmarks.perf_analyzer.cpu import CLIENT, SERVER, STEAL

_US_COLUMNS = {
    "p50 latency": "p50_ms",
    "p90 latency": "p90_ms",
    "p95 latency": "p95_ms",
    "p99 latency": "p99_ms",
    "Avg latency": "avg_ms",
    "Client Send": "client_send_ms",
    "Network+Server Send/Recv": "network_ms",
    "Server Queue": "server_queue_ms",
    "Server Compute Input": "server_compute_input_ms",
    "Server Compute Infer": "server_compute_infer_ms",
    "Server Compute Output": "server_compute_output_ms",
    "Client Recv": "client_recv_ms",
}


def parse_perf_csv(text: str) -> list[dict[str, float]]:
    """Rows of a perf_analyzer ``-f`` CSV as dicts: ``concurrency``, ``throughput`` (infer/s) and ``*_ms``."""
    block = []
    for line in text.strip("\ufeff").splitlines():
        if not line.strip():
            if block:
                break
            continue
        block.append(line)
    if not block:
        raise ValueError("empty perf_analyzer CSV")
    reader = csv.DictReader(io.StringIO("\n".join(block)))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if "Inferences/Second" not in header:
        raise ValueError(f"not a perf_analyzer CSV (header: {header})")
    out = []
    for raw in reader:
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
        parsed: dict[str, float] = {"throughput": float(row["Inferences/Second"])}
        for key in ("Concurrency", "Request Rate"):
            if row.get(key):
                parsed[key.lower().replace(" ", "_")] = float(row[key])
        for col, name in _US_COLUMNS.items():
            if row.get(col):
                parsed[name] = float(row[col]) / 1000.0
        if "concurrency" in parsed:
            parsed["concurrency"] = int(parsed["concurrency"])
        out.append(parsed)
    return out


# --------------------------------------------------------------------------------- Triton statistics
def stats_snapshot(stats_json: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``get_inference_statistics(as_json=True)`` -> {model: counters} (int64 counters arrive as strings)."""
    snap: dict[str, dict[str, Any]] = {}
    for m in stats_json.get("model_stats", []):
        inf = m.get("inference_stats", {})

        def pair(name: str) -> tuple[int, int]:
            d = inf.get(name, {})
            return int(d.get("count", 0)), int(d.get("ns", 0))

        snap[m["name"]] = {
            "inference_count": int(m.get("inference_count", 0)),
            "execution_count": int(m.get("execution_count", 0)),
            "success": pair("success"),
            "queue": pair("queue"),
            "compute_infer": pair("compute_infer"),
            "batches": {int(b["batch_size"]): int(b.get("compute_infer", {}).get("count", 0)) for b in m.get("batch_stats", [])},
        }
    return snap


def stats_delta(before: Mapping[str, Any], after: Mapping[str, Any], models: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per model, what happened between two snapshots: inferences, executions, average batch size
    (inference_count / execution_count -- above 1 means the dynamic batcher merged requests), mean queue
    and compute time per request, and the histogram of executed batch sizes."""
    out: dict[str, dict[str, Any]] = {}
    empty = {"inference_count": 0, "execution_count": 0, "success": (0, 0), "queue": (0, 0), "compute_infer": (0, 0), "batches": {}}
    for name in models:
        a, b = before.get(name, empty), after.get(name, empty)
        inferences = b["inference_count"] - a["inference_count"]
        executions = b["execution_count"] - a["execution_count"]

        def mean_ms(key: str) -> float | None:
            n = b[key][0] - a[key][0]
            return round((b[key][1] - a[key][1]) / n / 1e6, 3) if n > 0 else None

        hist = {size: b["batches"].get(size, 0) - a["batches"].get(size, 0) for size in b["batches"]}
        out[name] = {
            "inference_count": inferences,
            "execution_count": executions,
            "avg_batch_size": round(inferences / executions, 2) if executions > 0 else None,
            "avg_queue_ms": mean_ms("queue"),
            "avg_compute_infer_ms": mean_ms("compute_infer"),
            "batch_size_histogram": {str(k): v for k, v in sorted(hist.items()) if v > 0},
        }
    return out


# --------------------------------------------------------------------------------- summary
def best_point(points: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The highest-throughput measured point."""
    ok = [p for p in points if p.get("throughput") is not None and not math.isnan(p["throughput"])]
    return max(ok, key=lambda p: p["throughput"]) if ok else None


def summary_rows(results: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """One row per (model, batching, concurrency); the best concurrency of each series is marked ★ and
    carries the % of the in-process ceiling."""
    rows = []
    for series in results:
        points = series.get("points", [])
        best = best_point(points)
        ceiling = series.get("ceiling") or {}
        ceiling_rps = ceiling.get("best_rows_per_s")
        for p in points:
            is_best = p is best
            pct = (100.0 * p["throughput"] / ceiling_rps) if (is_best and ceiling_rps) else None
            batch = (p.get("triton_stats") or {}).get(series.get("compute_model", series["model"]), {}).get("avg_batch_size")
            rows.append(
                [
                    f"`{series['model']}`",
                    f"{p['concurrency']}{' ★' if is_best else ''}",
                    series["batching"],
                    fmt(p.get("throughput")),
                    fmt(p.get("p50_ms"), 2),
                    fmt(p.get("p99_ms"), 2),
                    fmt(batch, 2),
                    (f"{ceiling_rps:,.0f} (b={ceiling.get('best_batch')})" if (is_best and ceiling_rps) else ""),
                    (f"{pct:.0f}%" if pct is not None else ""),
                ]
            )
    return rows


SUMMARY_HEADERS = (
    "model", "concurrency", "batching", "infer/s", "p50 ms", "p99 ms", "avg batch", "ORT ceiling rows/s", "% of ceiling",
)


CPU_HEADERS = (
    "model", "batching", "concurrency", "infer/s", "% of ceiling", "model stub", "tokenizer stub", "tritonserver",
    "perf_analyzer", "steal", "idle", "model cores: served / ceiling", "rows per model core-s: served / ceiling",
)


def _pct(share: float | None) -> str:
    return "" if share is None else f"{100 * share:.0f}%"


def cpu_rows(results: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Where the cores went at each series' best concurrency, and the served/ceiling ratio split in two:
    how many cores the model's stub got compared with the ceiling, and how many rows it did per core-second
    compared with the ceiling (batch size and per-request overhead inside the stub)."""
    rows = []
    for series in results:
        best = best_point(series.get("points", []))
        cpu = (best or {}).get("cpu")
        if not cpu:
            continue
        share = cpu["share"]
        compute = series.get("compute_model", series["model"])
        tokenizer = next((m for m in series.get("composing_models", []) if m != compute), None)
        ceiling = series.get("ceiling") or {}
        ceiling_rps = ceiling.get("best_rows_per_s")
        ceiling_cores = (ceiling.get("cores_used") or {}).get(str(ceiling.get("best_batch")))
        model_cores = share.get(compute, 0.0) * cpu["cores"]
        cores_ratio = per_core = ""
        if ceiling_rps and ceiling_cores and model_cores:
            cores_ratio = f"{model_cores:.2f} / {ceiling_cores:.2f}"
            per_core = f"{best['throughput'] / model_cores:,.0f} / {ceiling_rps / ceiling_cores:,.0f}"
        rows.append(
            [
                f"`{series['model']}`", series["batching"], str(best["concurrency"]), fmt(best["throughput"]),
                _pct(best["throughput"] / ceiling_rps) if ceiling_rps else "",
                _pct(share.get(compute)), _pct(share.get(tokenizer)) if tokenizer else "-", _pct(share.get(SERVER)),
                _pct(share.get(CLIENT)), _pct(share.get(STEAL)), _pct(share.get("idle")), cores_ratio, per_core,
            ]
        )
    return rows


def render_summary(results: Sequence[Mapping[str, Any]], device: Mapping[str, Any], *, command: str = "") -> str:
    """perf_summary.md: the table docs/serving-speed.md quotes, with the machine it was measured on."""
    lines = [
        "# perf_analyzer summary",
        "",
        f"Measured on {device.get('cpu_model', '?')} ({device.get('usable_cores', '?')} usable cores, "
        f"{device.get('gpu', '?')}), {device.get('timestamp_utc', '')}; client and server share the cores.",
        "Read the ratios (batching on/off, % of the in-process ONNX Runtime ceiling), not the absolute numbers.",
        "",
    ]
    if command:
        lines += [f"Command: `{command}`", ""]
    runs: dict[tuple[str, str], list[str]] = {}
    for s in results:
        d = s.get("device") or {}
        key = (d.get("timestamp_utc", "?"), ", ".join(map(str, d.get("load_average_at_start", []))) or "?")
        runs.setdefault(key, [])
        if s["model"] not in runs[key]:
            runs[key].append(s["model"])
    if len(runs) > 1 or any(k[0] != device.get("timestamp_utc") for k in runs):
        lines.append("Measurement runs (start time, 1/5/15-min load average at start -> models):")
        lines += [f"- {ts}, load {load}: {', '.join(models)}" for (ts, load), models in sorted(runs.items())]
        lines.append("")
    lines.append(markdown_table(SUMMARY_HEADERS, summary_rows(results)))
    lines += [
        "★ = the series' best concurrency. *avg batch* = Triton's inference_count / execution_count for the model",
        "doing the compute (the ONNX model behind an ensemble) during that run: > 1 means the dynamic batcher",
        "merged requests. *ORT ceiling* = the same ONNX file in-process with the served thread count, at its best",
        "batch size (b) on realistic token lengths; *% of ceiling* = served infer/s at the best concurrency / ceiling.",
        "",
    ]
    cpu = cpu_rows(results)
    if cpu:
        lines += [
            "## Where the cores went (best concurrency of each series)",
            "",
            "Share of the machine (cores x wall time of the run) each process used; *model stub* is the python-backend",
            "process running ONNX Runtime for the model; *steal* is CPU time the hypervisor gave other guests. The",
            "ceiling runs alone, so served / ceiling = (cores the model got / cores the ceiling used) x (rows per",
            "core-second served / in the ceiling). Rows per core-second do not count steal, so they compare runs",
            "taken minutes apart on a shared VM; absolute infer/s do not.",
            "",
            markdown_table(CPU_HEADERS, cpu),
            "",
        ]
    return "\n".join(lines)


def results_csv(results: Sequence[Mapping[str, Any]]) -> str:
    """Every measured point, flat (one CSV for spreadsheets)."""
    cols = ["model", "batching", "concurrency", "throughput", "p50_ms", "p90_ms", "p95_ms", "p99_ms",
            "server_queue_ms", "server_compute_infer_ms", "avg_batch_size", "stable"]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(cols)
    for series in results:
        compute = series.get("compute_model", series["model"])
        for p in series.get("points", []):
            batch = (p.get("triton_stats") or {}).get(compute, {}).get("avg_batch_size")
            values = {**p, "model": series["model"], "batching": series["batching"], "avg_batch_size": batch}
            writer.writerow(["" if values.get(c) is None else values.get(c) for c in cols])
    return buf.getvalue()


def plot(results: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Throughput vs p99 latency per model (one panel each), batching on vs off, concurrency annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(s["model"] for s in results if s.get("points")))
    if not models:
        return None
    cols = min(3, len(models))
    rows = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.0 * rows), squeeze=False)
    styles = {"on": ("tab:blue", "o-"), "off": ("tab:red", "s--")}
    for ax, model in zip(axes.flat, models):
        for series in (s for s in results if s["model"] == model and s.get("points")):
            pts = sorted(series["points"], key=lambda p: p["concurrency"])
            color, style = styles.get(series["batching"], ("tab:gray", "^-"))
            xs = [p["p99_ms"] for p in pts]
            ys = [p["throughput"] for p in pts]
            ax.plot(xs, ys, style, color=color, label=f"dynamic batching {series['batching']}")
            for p in pts:
                ax.annotate(str(p["concurrency"]), (p["p99_ms"], p["throughput"]), textcoords="offset points",
                            xytext=(4, 4), fontsize=7, color=color)
            ceiling = (series.get("ceiling") or {}).get("best_rows_per_s")
            if ceiling and series["batching"] == "on":
                if ceiling <= 3 * max(ys):
                    ax.axhline(ceiling, color="gray", linestyle=":", linewidth=1, label=f"in-process ORT ceiling ({ceiling:,.0f}/s)")
                else:  # a line far above the data would flatten it; say it instead
                    ax.text(0.02, 0.97, f"in-process ORT ceiling {ceiling:,.0f}/s (off scale)", transform=ax.transAxes,
                            fontsize=7, color="gray", va="top")
        ax.set_title(model)
        ax.set_xlabel("p99 latency (ms)")
        ax.set_ylabel("throughput (infer/s)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(models):]:
        ax.axis("off")
    fig.suptitle("Triton perf_analyzer: throughput vs p99 (labels = concurrency)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
