"""Shared by every benchmark: where things are, what machine ran them, realistic inputs, percentiles.

Realistic inputs come from the build's generated data (``<build>/data``): intent texts from the held-out
intents split, queries and (query, passage) pairs from the held-out retrieval triples -- the same
distributions the models were trained and evaluated on, so token lengths (and therefore the tokenizer
buckets Triton batches by) look like production traffic rather than ``--string-length 16`` noise.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUILD_DIR = ROOT / ".build"
DEFAULT_RESULTS_DIR = ROOT / "benchmarks" / "results"


# ------------------------------------------------------------------------------------------- machine
def cpu_model(cpuinfo: str | None = None) -> str:
    """The ``model name`` line of /proc/cpuinfo (or of the text given), else the platform's guess."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def gpu_description() -> str:
    """"no GPU" unless an NVIDIA device node exists (these benchmarks run everything on CPU either way)."""
    return "NVIDIA device present (unused: CPU flavour)" if Path("/dev/nvidia0").exists() else "no GPU"


def device_info() -> dict[str, Any]:
    """What ran the benchmark. Absolute numbers only compare across runs with the same record."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 0
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "gpu": gpu_description(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": load,
        "timestamp_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": "client and server share the same cores",
    }


# ------------------------------------------------------------------------------------------- data
def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def intent_texts(data_dir: Path, limit: int = 512) -> list[str]:
    """Held-out customer messages (intents test split), unique, in file order."""
    texts = [r["text"] for r in read_jsonl(Path(data_dir) / "intents" / "test.jsonl")]
    return list(dict.fromkeys(t for t in texts if t.strip()))[:limit]


def queries(data_dir: Path, limit: int = 512) -> list[str]:
    """Held-out retrieval queries (triples test split), unique."""
    qs = [r["query"] for r in read_jsonl(Path(data_dir) / "triples" / "test.jsonl")]
    return list(dict.fromkeys(q for q in qs if q.strip()))[:limit]


def query_passage_pairs(data_dir: Path, limit: int = 512) -> list[tuple[str, str]]:
    """(query, passage) pairs as the reranker sees them: each test query with its positive and its hard
    negative document, alternating."""
    docs = {d["doc_id"]: d["text"] for d in read_jsonl(Path(data_dir) / "documents.jsonl")}
    pairs: list[tuple[str, str]] = []
    for t in read_jsonl(Path(data_dir) / "triples" / "test.jsonl"):
        for doc_id in (t["positive_doc_id"], t["negative_doc_id"]):
            if doc_id in docs:
                pairs.append((t["query"], docs[doc_id]))
        if len(pairs) >= limit:
            break
    return pairs[:limit]


# ------------------------------------------------------------------------------------------- statistics
def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


def latency_summary(ms: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(sum(ms) / len(ms), 3) if ms else math.nan,
    }


# ------------------------------------------------------------------------------------------- output
def write_json(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: numbers rounded, missing values as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines) + "\n"
