"""Shared by every benchmark: where things are, what machine ran them, whether it was quiet, realistic inputs,
percentiles.

**Quietness** (the cores are shared: a figure measured beside a build or a test suite moved x2.5 between rounds).
:func:`quiet_round` wraps one round of a measurement: it records the load average and /proc/stat before and
after, and judges the round *quiet* when the 1-minute load average before it was at most
``QUIET_LOAD_PER_CORE`` per usable core (the benchmark has not started: that load is someone else's), CPU steal
during it was at most ``QUIET_STEAL_PCT`` of the CPU time, and processes outside this benchmark's own process
tree used at most ``QUIET_FOREIGN_PCT`` of it. A round that was not quiet prints a ``WARNING`` line at once.
:func:`write_json` adds ``"quietness": {"quiet": ..., "rounds": [...]}`` to every result it writes (a benchmark
that marks no rounds gets the whole run, from this module's import, as one round) and repeats the warning.

Realistic inputs come from the build's generated data (``<build>/data``): intent texts from the held-out
intents split, queries and (query, passage) pairs from the held-out retrieval triples -- the same
distributions the models were trained and evaluated on, so token lengths (and therefore the tokenizer
buckets Triton batches by) look like production traffic rather than ``--string-length 16`` noise.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

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


# ------------------------------------------------------------------------------------------- quietness
QUIET_LOAD_PER_CORE = 0.25  # 1-min load average before a round, per usable core (0.5 on this 2-core box)
QUIET_STEAL_PCT = 2.0  # CPU steal during a round, % of all CPU time
QUIET_FOREIGN_PCT = 10.0  # CPU used during a round outside this benchmark's process tree, % of all CPU time
_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times(stat: str | None = None) -> dict[str, int]:
    """The machine's aggregate ``cpu`` line of /proc/stat (or of the text given), in clock ticks; {} off Linux."""
    if stat is None:
        try:
            stat = Path("/proc/stat").read_text()
        except OSError:
            return {}
    for line in stat.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            return {k: int(v) for k, v in zip(_CPU_FIELDS, parts[1:])}
    return {}


def own_cpu_ticks(root: int | None = None, proc: Path = Path("/proc")) -> int:
    """Clock ticks used by process ``root`` (default: this one) and its live descendants (servers it started),
    reaped children included (each process's cutime + cstime)."""
    root = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid ... utime(12) stime cutime cstime
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        ticks[pid] = sum(int(x) for x in fields[11:15])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += ticks.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def machine_probe() -> dict[str, Any]:
    """One reading: monotonic time, load averages, /proc/stat's cpu line, this process tree's CPU ticks."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {"t": time.monotonic(), "load": load, "cpu": cpu_times(), "own_ticks": own_cpu_ticks()}


def judge_quietness(before: dict[str, Any], after: dict[str, Any], cores: int | None = None) -> dict[str, Any]:
    """The record of one round between two :func:`machine_probe` readings: the figures and the verdict."""
    cores = cores or _usable_cores()
    d = {k: after["cpu"].get(k, 0) - before["cpu"].get(k, 0) for k in _CPU_FIELDS}
    total = sum(d.values())
    busy = total - d["idle"] - d["iowait"]
    foreign = max(0, busy - (after["own_ticks"] - before["own_ticks"]))
    steal_pct = round(100.0 * d["steal"] / total, 2) if total > 0 else None
    foreign_pct = round(100.0 * foreign / total, 1) if total > 0 else None
    load_before = before["load"][0] if before["load"] else None
    reasons = []
    if load_before is not None and load_before > QUIET_LOAD_PER_CORE * cores:
        reasons.append(f"load average {load_before} before the round on {cores} cores (> {QUIET_LOAD_PER_CORE * cores:g})")
    if steal_pct is not None and steal_pct > QUIET_STEAL_PCT:
        reasons.append(f"CPU steal {steal_pct}% (> {QUIET_STEAL_PCT:g}%)")
    if foreign_pct is not None and foreign_pct > QUIET_FOREIGN_PCT:
        reasons.append(f"other processes used {foreign_pct}% of the CPU (> {QUIET_FOREIGN_PCT:g}%)")
    return {
        "seconds": round(after["t"] - before["t"], 2),
        "load_before": before["load"], "load_after": after["load"],
        "steal_pct": steal_pct, "foreign_cpu_pct": foreign_pct,
        "quiet": not reasons, "reasons": reasons,
    }


_RUN_START = machine_probe()  # a benchmark that marks no rounds is judged as one round from here
_ROUNDS: list[dict[str, Any]] = []


def warn_not_quiet(what: str, reasons: Sequence[str]) -> None:
    print(f"WARNING: {what} was NOT measured on a quiet machine: {'; '.join(reasons)} -- "
          "its figures are marked \"quiet\": false", file=sys.stderr, flush=True)


class QuietRound:
    """What :func:`quiet_round` yields; ``record`` is filled when the round ends."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.record: dict[str, Any] = {}

    @property
    def quiet(self) -> bool:
        return bool(self.record.get("quiet", True))


@contextlib.contextmanager
def quiet_round(label: str) -> Iterator[QuietRound]:
    """Record the machine's load and CPU steal around one round; warn at once when it was not quiet."""
    rnd = QuietRound(label)
    before = machine_probe()
    try:
        yield rnd
    finally:
        rnd.record = {"round": label, **judge_quietness(before, machine_probe())}
        _ROUNDS.append(rnd.record)
        if not rnd.record["quiet"]:
            warn_not_quiet(f"round {label!r}", rnd.record["reasons"])


def quietness() -> dict[str, Any]:
    """This run's verdict: every round marked so far (or the whole run as one), quiet only if all were."""
    rounds = list(_ROUNDS) or [{"round": "whole run", **judge_quietness(_RUN_START, machine_probe())}]
    return {
        "quiet": all(r["quiet"] for r in rounds),
        "criteria": {"load_per_core_before": QUIET_LOAD_PER_CORE, "steal_pct": QUIET_STEAL_PCT,
                     "foreign_cpu_pct": QUIET_FOREIGN_PCT, "usable_cores": _usable_cores()},
        "rounds": rounds,
    }


def quietness_line(report: dict[str, Any]) -> str:
    """One markdown line for a result's report: the verdict, and why when it was not quiet."""
    rounds = report.get("rounds", [])
    if report.get("quiet", True):
        return f"Quiet machine: all {len(rounds)} measured round(s) passed (load, steal, other processes).\n"
    loud = [r for r in rounds if not r["quiet"]]
    why = "; ".join(f"{r['round']}: {', '.join(r['reasons'])}" for r in loud[:3])
    return f"**WARNING: NOT QUIET** -- {len(loud)} of {len(rounds)} round(s) shared the machine ({why}). Treat these figures as noisy.\n"


def with_quietness(markdown: str, report: dict[str, Any]) -> str:
    """``markdown`` with :func:`quietness_line` right under its first line (the title)."""
    title, sep, rest = markdown.partition("\n")
    return f"{title}{sep}\n{quietness_line(report)}{rest}" if sep else f"{markdown}\n\n{quietness_line(report)}"


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
    """Write ``payload`` atomically; a dict result gets this run's ``"quietness"`` (warned about when not quiet)."""
    if isinstance(payload, dict) and "quietness" not in payload:
        payload = {**payload, "quietness": quietness()}
        if not payload["quietness"]["quiet"]:
            warn_not_quiet(str(path), [f"{r['round']}: {', '.join(r['reasons'])}" for r in payload["quietness"]["rounds"] if not r["quiet"]][:3])
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
