"""What the traffic log costs: the request path's share (``defer`` + the done-callback's ``submit``: a
``put_nowait``) and the background writer's (batched inserts: rows/s into SQLite and into a real PostgreSQL 15).

    .venv/bin/python -m benchmarks.drift.store_bench [--rows 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import numpy as np

from benchmarks import common


def records(n: int):
    from server.traffic.record import Sketcher, TrafficRecord

    sketch = Sketcher(384)
    rng = np.random.default_rng(0)
    return [TrafficRecord(ts=1e9 + i, request_id=f"r{i}", session_hash="abcdef0123456789", intent="product_question",
                          confidence=0.9, tier="template", model="template",
                          timings_ms={"validation": 0.05, "input_guard": 0.4, "rules": 0.02, "classify": 6.1, "embed": 5.2,
                                      "adapter": 1.1, "retrieve": 0.8, "facts": 2.0, "answer": 0.3, "output_guard": 0.6},
                          degraded=("rerank_skipped",), guardrails=("pii:redacted",),
                          message="is [NAME]'s copy of naruto vol 3 in stock?", sketch=sketch(rng.normal(size=384)))
            for i in range(n)]


def write_rate(store, rows, batch: int = 200) -> float:
    started = time.perf_counter()
    for i in range(0, len(rows), batch):
        store.write(rows[i : i + batch])
    return len(rows) / (time.perf_counter() - started)


async def submit_cost(n: int) -> dict[str, float]:
    from server.schema import ChatResult
    from server.traffic.recorder import TrafficRecorder
    from server.traffic.store import SQLiteTrafficStore

    rec = TrafficRecorder(SQLiteTrafficStore(), None, maxsize=n + 1)  # not started: measures the enqueue alone
    result = ChatResult(answer="ok", intent="product_question", intent_confidence=0.9, tier="template", model="t",
                        request_id="r", timings=(("classify", 6.0),))
    vector = np.ones(384, dtype=np.float32)
    callbacks = []
    started = time.perf_counter()
    for _ in range(n):
        rec.defer(result, session_id="s", message="m", vector=vector, stream=False, after_response=callbacks.append)
    deferred = time.perf_counter() - started
    started = time.perf_counter()
    for fn in callbacks:
        fn()
    submitted = time.perf_counter() - started
    turns = [rec._queue.get_nowait() for _ in range(n)]
    started = time.perf_counter()
    for t in turns:
        rec.record_of(t)
    built = time.perf_counter() - started
    return {"defer_us": deferred / n * 1e6, "done_callback_submit_us": submitted / n * 1e6,
            "writer_build_record_us": built / n * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args(argv)
    from server.traffic.store import PostgresTrafficStore, SQLiteTrafficStore
    from benchmarks import postgres_process as postgres

    rows = records(args.rows)
    out: dict = {"rows": args.rows, "batch": 200, "device": common.device_info()}
    out["request_path"] = asyncio.run(submit_cost(args.rows))
    scratch = common.DEFAULT_RESULTS_DIR / "tmp" / "drift"
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "bench.db").unlink(missing_ok=True)
    sqlite = SQLiteTrafficStore(str(scratch / "bench.db"))
    out["sqlite_rows_per_s"] = write_rate(sqlite, rows)
    started = time.perf_counter()
    n = len(sqlite.records(1e9, 1e9 + 7 * 86400))
    out["sqlite_read_rows_per_s"] = n / (time.perf_counter() - started)
    sqlite.close()
    if postgres.skip_reason() is None:
        with postgres.running_postgres() as dsn:
            pg = PostgresTrafficStore(dsn)
            out["postgres_rows_per_s"] = write_rate(pg, rows)
            started = time.perf_counter()
            n = len(pg.records(1e9, 1e9 + 7 * 86400))
            out["postgres_read_rows_per_s"] = n / (time.perf_counter() - started)
            pg.close()
    out = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in out.items()}
    out["request_path"] = {k: round(v, 2) for k, v in out["request_path"].items()}
    common.write_json(common.DEFAULT_RESULTS_DIR / "drift" / "store_bench.json", out)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
