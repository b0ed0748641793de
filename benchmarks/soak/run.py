"""Soak (reliability property 14, docs/reliability.md): open-loop Chat load at half the saturation rate for ``--minutes`` on the embedded
default, with the service's and tritonserver's resources sampled every 10 s. Not part of CI.

    python -m benchmarks.soak.run [--minutes 30] [--saturation-rps 40] [--rate R] [--request-path-only]
                                  [--build-dir .build] [--out benchmarks/results/soak]

The service runs as production runs it on one box (``python -m server --launch-triton``, production budgets,
template tier), started by ``benchmarks.chaos.process.ServeProcess``. Arrivals are Poisson
(``benchmarks.service.load.poisson_arrivals``: a slow service does not slow the client). The default rate is
half of ``--saturation-rps``: 40 rps is where ``benchmarks/results/service_load.md`` measured this 2-core box
saturated (classify past its budget for about half the chats).

Every 10 s, per window:

- **service** (the ``python -m server`` process): RSS, open fds, threads (``/proc/<pid>/{status,fd}``);
- **tritonserver** (its whole process group: the server and every python-backend stub): RSS summed, fds
  summed, threads summed;
- **event-loop lag**: the service's gRPC health ``Check`` round trip, sent every second from this process. A
  health check does no work, so its latency is the time the service's event loop took to get to it (plus a
  loopback round trip, measured idle before the load starts and reported as the baseline);
- chats answered, errors, degraded, and **p99** end-to-end latency (from the scheduled arrival).

Verdict (``verdict``): the first 20% of the windows (at least one) are warm-up; *baseline* = the median of the
next 20%, *end* = the median of the last 20%. Pass when RSS grows < 5% (service, and Triton's group), fds and
threads end within +-2 of their baseline (flat), and the end p99 is < 10% above the baseline p99.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks import common
from benchmarks.chaos.process import ServeProcess, warm_service
from benchmarks.service.load import poisson_arrivals

log = logging.getLogger("benchmarks.soak")

SAMPLE_S = 10.0
RSS_GROWTH_MAX = 0.05
P99_DRIFT_MAX = 0.10
FLAT_TOLERANCE = 2  # fds / threads


# ------------------------------------------------------------------------------------------ /proc
SESSIONS = 200  # concurrent customers: 20 chats/s is 0.1 message/s each, under the per-session limit (2/s)


def proc_usage(pid: int) -> dict[str, int] | None:
    """RSS (bytes), open fds and threads of one process, or None when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {"rss": int(fields["VmRSS"].split()[0]) * 1024, "fds": fds, "threads": int(fields["Threads"])}


def group_usage(pgid: int) -> dict[str, int]:
    from server.triton_runtime import group_members

    total = {"rss": 0, "fds": 0, "threads": 0, "processes": 0}
    for pid, _ in group_members(pgid):
        usage = proc_usage(pid)
        if usage:
            for k, v in usage.items():
                total[k] += v
            total["processes"] += 1
    return total


# ------------------------------------------------------------------------------------------ verdict
def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(windows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pass/fail from the per-window samples (see the module docstring)."""
    n = len(windows)
    if n < 3:
        return {"pass": False, "why": f"only {n} windows: too short to judge"}
    cut = max(1, n // 5)
    base, end = windows[cut : 2 * cut], windows[n - cut :]

    def series(rows, key):
        return [r[key] for r in rows if r.get(key) is not None]

    checks: dict[str, dict[str, Any]] = {}
    for key in ("service_rss", "triton_rss"):
        b, e = _median(series(base, key)), _median(series(end, key))
        growth = (e - b) / b if b else float("nan")
        checks[key] = {"baseline": b, "end": e, "growth": round(growth, 4), "pass": growth < RSS_GROWTH_MAX}
    for key in ("service_fds", "service_threads", "triton_fds", "triton_threads"):
        b, e = _median(series(base, key)), _median(series(end, key))
        checks[key] = {"baseline": b, "end": e, "delta": e - b, "pass": abs(e - b) <= FLAT_TOLERANCE}
    b = _median(series(base, "p99_ms"))
    e = _median(series(end, "p99_ms"))
    drift = (e - b) / b if b else float("nan")
    checks["p99_ms"] = {"baseline": b, "end": e, "drift": round(drift, 4), "pass": drift < P99_DRIFT_MAX}
    return {"pass": all(c["pass"] for c in checks.values()), "checks": checks,
            "windows": {"warmup": cut, "baseline": [cut, 2 * cut], "end": [n - cut, n]}}


# ------------------------------------------------------------------------------------------ the run
async def soak(serve: ServeProcess, messages: Sequence[str], *, rate: float, duration_s: float, timeout_s: float,
               seed: int = 0) -> dict[str, Any]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from mangaassist.v1 import mangaassist_pb2 as pb
    from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

    loop = asyncio.get_running_loop()
    arrivals = poisson_arrivals(rate, duration_s, random.Random(seed))
    results: list[tuple[float, float, str, bool]] = []  # (t, ms, code, degraded)
    lags: list[tuple[float, float]] = []
    windows: list[dict[str, Any]] = []

    async with grpc.aio.insecure_channel(serve.target) as channel:
        stub, health = pb_grpc.MangaAssistStub(channel), health_pb2_grpc.HealthStub(channel)

        async def health_rtt() -> float:
            sent = loop.time()
            await health.Check(health_pb2.HealthCheckRequest(service="liveness"), timeout=5)
            return (loop.time() - sent) * 1000

        idle = sorted([await health_rtt() for _ in range(20)])
        start = loop.time()

        async def one(i: int, offset: float) -> None:
            scheduled = start + offset
            try:
                # a pool of customers, each a session: the session store reaches its steady state early (unique ids
                # would fill it for a whole session TTL, which is growth by design, not a leak)
                reply = await stub.Chat(pb.ChatRequest(message=messages[i % len(messages)], session_id=f"soak-{i % SESSIONS}"),
                                        timeout=timeout_s)
                code, degraded = "OK", any(r in ("classifier_unavailable", "retrieval_unavailable") for r in reply.degraded)
            except grpc.aio.AioRpcError as err:
                code, degraded = err.code().name, False
            results.append((offset, (loop.time() - scheduled) * 1000, code, degraded))

        async def probe_lag(until: float) -> None:
            while loop.time() < until:
                try:
                    lags.append((loop.time() - start, await health_rtt()))
                except grpc.aio.AioRpcError:
                    lags.append((loop.time() - start, float("nan")))
                await asyncio.sleep(1.0)

        async def sample(until: float) -> None:
            seen = 0
            t = SAMPLE_S
            while start + t <= until + 0.5:
                await asyncio.sleep(max(0.0, start + t - loop.time()))
                done = [r for r in results[seen:]]
                seen = len(results)
                window = [r for r in results if t - SAMPLE_S <= r[0] < t]
                ms = [r[1] for r in window if r[2] == "OK"]
                lag = [v for s, v in lags if t - SAMPLE_S <= s < t and v == v]
                svc = proc_usage(serve.pid) or {}
                tri_pid = serve.triton_pid()
                tri = group_usage(tri_pid) if tri_pid else {}
                row = {
                    "t": round(t, 1), "chats": len(window), "answered_since_last": len(done),
                    "errors": sum(r[2] != "OK" for r in window), "degraded": sum(r[3] for r in window),
                    "p50_ms": round(common.percentile(ms, 50), 2) if ms else None,
                    "p99_ms": round(common.percentile(ms, 99), 2) if ms else None,
                    "loop_lag_p50_ms": round(common.percentile(lag, 50), 2) if lag else None,
                    "loop_lag_max_ms": round(max(lag), 2) if lag else None,
                    **{f"service_{k}": v for k, v in svc.items()},
                    **{f"triton_{k}": v for k, v in tri.items()},
                }
                windows.append(row)
                log.info("t=%4.0fs chats %3d err %d p99 %s ms lag %s ms | service rss %.0f MiB fds %s thr %s | "
                         "triton rss %.0f MiB fds %s thr %s", t, row["chats"], row["errors"], row["p99_ms"],
                         row["loop_lag_p50_ms"], svc.get("rss", 0) / 2**20, svc.get("fds"), svc.get("threads"),
                         tri.get("rss", 0) / 2**20, tri.get("fds"), tri.get("threads"))
                t += SAMPLE_S

        end = start + duration_s
        sampler = asyncio.create_task(sample(end))
        prober = asyncio.create_task(probe_lag(end))
        tasks = []
        for i, offset in enumerate(arrivals):
            delay = start + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, offset)))
        await asyncio.gather(*tasks, sampler, prober)
    ok = [r[1] for r in results if r[2] == "OK"]
    return {
        "rate": rate, "duration_s": duration_s, "sent": len(arrivals),
        "errors": sum(r[2] != "OK" for r in results), "degraded": sum(r[3] for r in results),
        "e2e": common.latency_summary(ok),
        "health_rtt_idle_ms": {"p50": round(idle[len(idle) // 2], 2), "max": round(idle[-1], 2)},
        "windows": windows,
        "verdict": verdict(windows),
    }


# ------------------------------------------------------------------------------------------ report
def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = result["windows"]
    t = [r["t"] / 60 for r in w]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    (a, b), (c, d) = axes
    a.plot(t, [r.get("service_rss", 0) / 2**20 for r in w], label="service")
    a.plot(t, [r.get("triton_rss", 0) / 2**20 for r in w], label="tritonserver + stubs")
    a.set_ylabel("RSS MiB")
    a.legend()
    for key, label in (("service_fds", "service fds"), ("triton_fds", "triton fds")):
        b.plot(t, [r.get(key) for r in w], label=label)
    for key, label in (("service_threads", "service threads"), ("triton_threads", "triton threads")):
        b.plot(t, [r.get(key) for r in w], "--", label=label)
    b.set_ylabel("count")
    b.legend(fontsize=8)
    c.plot(t, [r.get("p99_ms") for r in w], label="chat e2e p99")
    c.plot(t, [r.get("p50_ms") for r in w], label="chat e2e p50")
    c.set_ylabel("ms")
    c.set_xlabel("minutes")
    c.legend()
    d.plot(t, [r.get("loop_lag_p50_ms") for r in w], label="health RTT p50 (loop lag)")
    d.plot(t, [r.get("loop_lag_max_ms") for r in w], label="health RTT max")
    d.set_ylabel("ms")
    d.set_xlabel("minutes")
    d.legend()
    v = result["verdict"]
    fig.suptitle(f"Soak: {result['rate']:.0f} chats/s for {result['duration_s'] / 60:.0f} min -- "
                 f"{'PASS' if v['pass'] else 'FAIL'}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(result: dict[str, Any], device: dict[str, Any], command: str) -> str:
    v = result["verdict"]
    rows = []
    for key, c in v.get("checks", {}).items():
        if key.endswith("rss"):
            rows.append([key, f"{c['baseline'] / 2**20:.1f} MiB", f"{c['end'] / 2**20:.1f} MiB", f"{100 * c['growth']:+.2f}%", "< +5%", "pass" if c["pass"] else "**FAIL**"])
        elif key == "p99_ms":
            rows.append([key, f"{c['baseline']:.1f}", f"{c['end']:.1f}", f"{100 * c['drift']:+.1f}%", "< +10%", "pass" if c["pass"] else "**FAIL**"])
        else:
            rows.append([key, f"{c['baseline']:.0f}", f"{c['end']:.0f}", f"{c['delta']:+.0f}", "±2", "pass" if c["pass"] else "**FAIL**"])
    lag = [r["loop_lag_p50_ms"] for r in result["windows"] if r.get("loop_lag_p50_ms") is not None]
    lag_max = [r["loop_lag_max_ms"] for r in result["windows"] if r.get("loop_lag_max_ms") is not None]
    e2e = result["e2e"]
    return "\n".join([
        "# Soak: open-loop Chat load on the embedded default",
        "",
        f"Measured on {device['cpu_model']} ({device['usable_cores']} usable cores), {device['timestamp_utc']}; load "
        "generator, service and Triton share the cores (and, here, the box with other work).",
        f"Command: `{command}`",
        "",
        f"{result['rate']:.1f} chats/s (Poisson) for {result['duration_s'] / 60:.1f} min: {result['sent']} chats, "
        f"{result['errors']} errors, {result['degraded']} degraded (models unavailable); e2e p50 {e2e['p50_ms']:.1f} ms, "
        f"p99 {e2e['p99_ms']:.1f} ms. Samples every {SAMPLE_S:.0f} s ({len(result['windows'])} windows; warm-up "
        f"{v.get('windows', {}).get('warmup', '?')}, baseline windows {v.get('windows', {}).get('baseline')}, end "
        f"windows {v.get('windows', {}).get('end')}).",
        "",
        common.markdown_table(("measure", "baseline", "end", "change", "limit", "verdict"), rows),
        "",
        f"Event-loop lag (health Check round trip, 1/s): idle {result['health_rtt_idle_ms']['p50']} ms; under load "
        f"window p50 {min(lag, default=float('nan')):.1f}–{max(lag, default=float('nan')):.1f} ms, worst single probe "
        f"{max(lag_max, default=float('nan')):.1f} ms.",
        "",
        f"**{'PASS' if v['pass'] else 'FAIL'}**" + ("" if v.get("checks") else f": {v.get('why')}"),
        "",
        "![soak](soak.png)",
    ]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="minutes of load")
    parser.add_argument("--saturation-rps", type=float, default=40.0, help="measured saturation (service_load.md)")
    parser.add_argument("--rate", type=float, help="chats/s (default: half of --saturation-rps)")
    parser.add_argument("--timeout", type=float, default=2.0, help="gRPC deadline per chat (s)")
    parser.add_argument("--request-path-only", action="store_true", help="serve without the LLM and scorer models")
    parser.add_argument("--build-dir", type=Path, default=common.DEFAULT_BUILD_DIR)
    parser.add_argument("--out", type=Path, default=common.DEFAULT_RESULTS_DIR / "soak")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    rate = args.rate or args.saturation_rps / 2
    build, out = args.build_dir.resolve(), args.out.resolve()
    command = "python -m benchmarks.soak.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    with warm_service(build, "soak", request_path_only=args.request_path_only) as (serve, messages):
        started = time.perf_counter()
        result = asyncio.run(soak(serve, messages, rate=rate, duration_s=args.minutes * 60, timeout_s=args.timeout))
        result["wall_s"] = round(time.perf_counter() - started, 1)
    device = common.device_info()
    out.mkdir(parents=True, exist_ok=True)
    common.write_json(out / "soak.json", {"device": device, "command": command, **result})
    plot(result, out / "soak.png")
    (out / "soak.md").write_text(render(result, device, command))
    print((out / "soak.md").read_text())
    return 0 if result["verdict"]["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
