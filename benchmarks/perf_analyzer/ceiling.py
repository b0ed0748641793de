"""The in-process ONNX Runtime ceiling: what the served ONNX file does with no server in the way.

Same file Triton serves (``Builder.served_onnx``), same session options as the python-backend model
(``model_repository/backends/onnx_model.py``: ORT_ENABLE_ALL, ``intra_op_threads`` from the spec, one
inter-op thread), measured with ORT's intra-op spin-waiting both off (as served: the cores are shared) and
on (ORT's default, often fastest for a process alone); the ceiling is the faster. Realistic inputs,
tokenised and bucket-padded like the served tokenizer. Reported at the best batch size among
``BATCH_SIZES``. Served throughput / ceiling is the serving efficiency: the share of
the raw model speed left after gRPC, the ensemble, tokenisation and batching delays.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from benchmarks.perf_analyzer.inputs import Workloads
from model_repository import spec

BATCH_SIZES = (1, 8, 16, 32, 64)


def served_threads(model: str) -> int:
    return next(m.cpu_threads for m in spec.ONNX_MODELS if m.name == model)


def session(path: Path, threads: int, spinning: bool = False, providers: Sequence[str] = ("CPUExecutionProvider",)) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=list(providers))


def rows_per_second(sess: Any, feeds: Sequence[dict[str, Any]], seconds: float) -> tuple[float, float]:
    """(rows/s, cores used) cycling through ``feeds`` for ``seconds`` (after one warm-up run of each) and at
    least once through all of them. Cores used = this process's CPU time / wall time over the timed part."""
    for feed in feeds:
        sess.run(None, feed)
    rows = n = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds or n < len(feeds):
        feed = feeds[n % len(feeds)]
        sess.run(None, feed)
        rows += len(next(iter(feed.values())))
        n += 1
    wall = time.perf_counter() - start
    return rows / wall, (time.process_time() - cpu_start) / wall


def measure_ceiling(
    model: str,
    onnx_path: Path,
    workloads: Workloads,
    *,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    seconds: float = 1.0,
    providers: Sequence[str] = ("CPUExecutionProvider",),
) -> dict[str, Any]:
    """rows/s per batch size and the best of them, for one served ONNX model (``providers``: ONNX Runtime's
    execution providers, the GPU flavour's CUDA first).

    Every batch size covers the whole workload perf_analyzer sends (its ``limit`` texts, consecutive ones
    batched together and padded to the batch's longest bucket), so no batch size is measured on an easier
    slice of it (short messages only, say)."""
    threads = served_threads(model)
    sessions = {spin: session(onnx_path, threads, spinning=spin, providers=providers) for spin in (False, True)}
    graph_inputs = {i.name for i in sessions[False].get_inputs()}
    by_spin: dict[bool, dict[str, tuple[float, float]]] = {False: {}, True: {}}
    widths: dict[str, list[int]] = {}
    for b in batch_sizes:
        feeds = []
        for k in range(max(1, workloads.limit // b)):
            feed = workloads.batch(model, b, offset=k * b)
            feeds.append({n: v for n, v in feed.items() if n in graph_inputs})
        widths[str(b)] = sorted({int(f[next(iter(f))].shape[1]) for f in feeds})
        for spin, sess in sessions.items():
            rate, used = rows_per_second(sess, feeds, seconds)
            by_spin[spin][str(b)] = (round(rate, 1), round(used, 2))
    spin = max(by_spin, key=lambda s: max(r for r, _ in by_spin[s].values()))
    by_batch = {b: r for b, (r, _) in by_spin[spin].items()}
    best = max(by_batch, key=by_batch.get)
    return {
        "model": model,
        "onnx_file": str(onnx_path),
        "intra_op_threads": threads,
        "spinning": spin,  # the faster of ORT's intra-op spin-wait settings, which the numbers below use
        "rows_per_s": by_batch,
        "cores_used": {b: c for b, (_, c) in by_spin[spin].items()},  # CPU seconds per wall second, per batch size
        "rows_per_s_other_spinning": {b: r for b, (r, _) in by_spin[not spin].items()},
        "feed_widths": widths,  # token length (bucket) per batch size, or the embedding dim
        "best_batch": int(best),
        "best_rows_per_s": by_batch[best],
    }
