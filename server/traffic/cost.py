"""Cost accounting: the Triton models' cost per inference (a configurable instance price spread over each
model's measured busy time) and a daily cost report from the traffic log.

Per-tier LLM tokens and cost are Prometheus counters counted as each turn is logged (server/traffic/metrics.py).

**Cost per inference** (:class:`TritonCostMonitor`, every ``costs.interval_s``): Triton's own counters, read from
its metrics endpoint -- ``nv_inference_compute_{input,infer,output}_duration_us`` (busy time) and
``nv_inference_count`` (inferences, batched rows counted) per model. Over an interval of ``dt`` seconds the
instance costs ``price x dt`` whatever it does; model m's share is its share of the busy time, so
``cost/inference(m) = price x dt x busy_m / sum(busy) / n_m``: an idle instance makes every inference dear,
which is the point. ``utilisation = sum(busy) / (dt x instance_capacity)``.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import re
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from server.periodic import PeriodicJob

log = logging.getLogger(__name__)

BUSY = ("nv_inference_compute_input_duration_us", "nv_inference_compute_infer_duration_us",
        "nv_inference_compute_output_duration_us")
COUNT = "nv_inference_count"


@dataclass(frozen=True)
class TritonSnapshot:
    at: float  # monotonic seconds
    busy_us: Mapping[str, float]  # model -> cumulative busy microseconds
    inferences: Mapping[str, float]  # model -> cumulative inferences


def parse_triton_metrics(text: str, at: float) -> TritonSnapshot:
    from prometheus_client.parser import text_string_to_metric_families

    busy: dict[str, float] = collections.defaultdict(float)
    count: dict[str, float] = collections.defaultdict(float)
    for family in text_string_to_metric_families(text):
        if family.name not in BUSY and family.name != COUNT:
            continue
        for sample in family.samples:  # a typed counter's samples come back named <family>_total
            model = sample.labels.get("model")
            if model is None or sample.name not in (family.name, family.name + "_total"):
                continue
            (busy if family.name in BUSY else count)[model] += sample.value
    return TritonSnapshot(at, dict(busy), dict(count))


@dataclass(frozen=True)
class TritonCost:
    seconds: float
    utilisation: float
    per_inference_usd: Mapping[str, float]  # at the measured utilisation
    per_inference_full_usd: Mapping[str, float]  # what it would be with the instance 100% busy
    inferences: Mapping[str, float]


def ensemble_names(repository: Path) -> frozenset[str]:
    """The ensembles of a Triton model repository (``platform: "ensemble"`` in their config.pbtxt)."""
    if not repository.is_dir():
        return frozenset()
    return frozenset(c.parent.name for c in repository.glob("*/config.pbtxt")
                     if re.search(r'^\s*platform:\s*"ensemble"', c.read_text(), re.M))


def triton_cost(before: TritonSnapshot, after: TritonSnapshot, usd_per_hour: float, capacity: float = 1.0,
                ensembles: frozenset[str] = frozenset()) -> TritonCost:
    """``ensembles``: Triton reports an ensemble's busy time as the sum of its steps', which report their own too;
    they are left out of the utilisation and the shares (counted twice otherwise: a measured "226%"), and an
    ensemble's cost per inference comes out as the sum of its steps'."""
    seconds = max(1e-9, after.at - before.at)
    busy = {m: max(0.0, after.busy_us.get(m, 0.0) - before.busy_us.get(m, 0.0)) / 1e6 for m in after.busy_us}
    n = {m: max(0.0, after.inferences.get(m, 0.0) - before.inferences.get(m, 0.0)) for m in after.inferences}
    total_busy = sum(b for m, b in busy.items() if m not in ensembles)
    price_s = usd_per_hour / 3600.0
    per, full = {}, {}
    for m, b in busy.items():
        if n.get(m, 0) > 0 and total_busy > 0:
            per[m] = price_s * seconds * (b / total_busy) / n[m]
            full[m] = price_s * b / capacity / n[m]
    return TritonCost(seconds, total_busy / (seconds * capacity), per, full, n)


class TritonCostMonitor(PeriodicJob):
    """Scrapes Triton's metrics endpoint every ``interval_s`` and sets the cost gauges."""

    run_first = True

    def __init__(self, url: str, usd_per_hour: float, capacity: float, interval_s: float, metrics: Any,
                 fetch: Callable[[str], str] | None = None, ensembles: frozenset[str] = frozenset()) -> None:
        from server.drift.metrics import for_registry

        self.url, self.usd_per_hour, self.capacity, self.interval_s = url, usd_per_hour, capacity, interval_s
        self.ensembles = ensembles
        self.metrics = for_registry(metrics)
        self.fetch = fetch or _fetch
        self.last: TritonCost | None = None
        self._previous: TritonSnapshot | None = None

    def on_failure(self, err: Exception) -> None:  # Triton restarting or unreachable: start the deltas afresh
        log.info("triton cost sample failed: %r", err)
        self._previous = None

    async def run_once(self) -> TritonCost | None:
        return await self.sample()

    async def sample(self) -> TritonCost | None:
        text = await asyncio.to_thread(self.fetch, self.url)
        snap = parse_triton_metrics(text, time.monotonic())
        previous, self._previous = self._previous, snap
        if previous is None:
            return None
        cost = triton_cost(previous, snap, self.usd_per_hour, self.capacity, self.ensembles)
        self.metrics.triton_utilisation.set(cost.utilisation)
        for model, usd in cost.per_inference_usd.items():
            self.metrics.triton_cost.labels(model).set(usd)
        self.last = cost
        return cost


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 -- an operator-configured http URL
        return resp.read().decode()


# ------------------------------------------------------------------------------------ daily report
def daily_costs(records: Sequence[Any], usd_per_hour: float, instances: int = 1) -> list[dict[str, Any]]:
    """Per UTC day: turns, tokens and LLM cost per tier, the Triton instances' cost for the hours they ran that day
    (they cost whether asked or not; the log's first and last days count from its first / to its last turn), and
    the cost per turn."""
    days: dict[str, list[Any]] = collections.defaultdict(list)
    for r in records:
        days[dt.datetime.fromtimestamp(r.ts, dt.timezone.utc).strftime("%Y-%m-%d")].append(r)
    out = []
    first, last = (min(days), max(days)) if days else ("", "")
    for day in sorted(days):
        rows = days[day]
        tiers: dict[str, dict[str, float]] = {}
        for r in rows:
            t = tiers.setdefault(r.tier or "unknown", {"answers": 0, "input_tokens": 0, "output_tokens": 0, "llm_usd": 0.0})
            t["answers"] += 1
            t["input_tokens"] += r.input_tokens
            t["output_tokens"] += r.output_tokens
            t["llm_usd"] += r.cost_usd
        midnight = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc).timestamp()
        # the instances' hours that day: whole days, except that the log's first day starts at its first turn and
        # its last day ends at its last turn (a service started at 23:00 did not run, or cost, since midnight)
        start = rows[0].ts if day == first else midnight
        end = rows[-1].ts if day == last else midnight + 86400.0
        hours = max(1 / 60, (end - start) / 3600.0)
        triton_usd = usd_per_hour * hours * instances
        llm_usd = sum(t["llm_usd"] for t in tiers.values())
        out.append({
            "day": day, "turns": len(rows), "tiers": {k: {**v, "llm_usd": round(v["llm_usd"], 6)} for k, v in sorted(tiers.items())},
            "llm_usd": round(llm_usd, 6), "triton_hours": round(hours, 2), "triton_usd": round(triton_usd, 4),
            "total_usd": round(llm_usd + triton_usd, 4), "usd_per_turn": round((llm_usd + triton_usd) / len(rows), 6),
        })
    return out
