"""L0: the serving-speed tooling (benchmarks/speed, benchmarks/micro) -- no server, no build, no timing asserts.
Each micro-benchmark case runs once (it must work, not be fast); the breakdown's arithmetic, the comparison's
ratios and table, and the closed-loop client are checked on made-up numbers."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.micro.hot_paths import CASE_NAMES, cases
from benchmarks.speed import __main__ as speed_main
from benchmarks.speed import breakdown, closed_loop, handwritten_texts

pytestmark = pytest.mark.L0


def test_every_micro_benchmark_case_runs_once(store):
    built = cases(store, handwritten_texts()[:5])
    assert set(built) == set(CASE_NAMES)
    for name in CASE_NAMES:
        built[name]()
        built[name]()  # and moves on to the next message


def test_handwritten_messages_are_the_200_fixture_lines():
    texts = handwritten_texts()
    assert len(texts) == 200 and all(texts)


def _stats(counts_ns: dict[str, dict[str, tuple[int, int]]]) -> dict:
    return {"model_stats": [{"name": m, "inference_stats": {p: {"count": str(c), "ns": str(ns)} for p, (c, ns) in phases.items()}}
                            for m, phases in counts_ns.items()]}


def test_phase_means_are_per_request_deltas():
    before = breakdown.phase_totals(_stats({"m": {"success": (10, 10_000_000), "queue": (10, 1_000_000)}}))
    after = breakdown.phase_totals(_stats({"m": {"success": (20, 40_000_000), "queue": (20, 3_000_000)}}))
    means = breakdown.phase_means_ms(before, after, "m")
    assert means["success"] == 3.0 and means["queue"] == 0.2 and means["compute_infer"] is None


def test_breakdown_hops_add_up_to_what_the_client_saw():
    layers = {
        "tokenize": {"mean_ms": 0.05},
        "ort": {"mean_ms": 5.0},
        "triton_ensemble": {"mean_ms": 9.0, "triton": {
            "intent_classifier": {"success": 8.5},
            "intent_tokenizer": {"success": 1.0, "queue": 0.5, "compute_input": 0.05, "compute_infer": 0.4, "compute_output": 0.05},
            "intent_classifier_onnx": {"success": 7.4, "queue": 1.9, "compute_input": 0.1, "compute_infer": 5.3, "compute_output": 0.1},
        }},
    }
    hops = breakdown.derive(layers)
    parts = [h["ms"] for h in hops if not h["hop"].startswith("total")]
    assert sum(parts) == pytest.approx(9.0, abs=0.01)
    assert {h["hop"]: h["ms"] for h in hops}["ONNX step: stub hop (IPC, (de)serialisation)"] == pytest.approx(0.3)


def test_comparison_ratios_and_table():
    pts = lambda *rows: [{"concurrency": c, "throughput": t, "p50_ms": p50, "p99_ms": p99, "errors": {}} for c, t, p50, p99 in rows]
    result = {
        "command": "python -m benchmarks.speed", "device": {}, "started": "now", "messages": 200,
        "settings": {"concurrency": [1, 8]},
        "ceiling": {"rows_per_s": {"1": 200.0, "8": 400.0}, "best_batch": 8, "best_rows_per_s": 400.0},
        "series": {
            "triton_on": pts((1, 100.0, 5.5, 9.0), (8, 380.0, 20.0, 40.0)),
            "naive": pts((1, 90.0, 11.0, 20.0), (8, 30.0, 200.0, 400.0)),
        },
    }
    result["ratios"] = speed_main.ratios(result)
    assert result["ratios"][0]["value"] == 95.0 and result["ratios"][0]["met"] is True  # 380 / 400
    lone = next(r for r in result["ratios"] if "lone request" in r["what"])
    assert lone["value"] == pytest.approx(0.5) and lone["met"] is True  # 5.5 ms p50 vs 5.0 ms at b=1
    tenfold = next(r for r in result["ratios"] if "/ naive" in r["what"])
    assert tenfold["value"] == pytest.approx(12.67, abs=0.01) and tenfold["met"] is True
    table = speed_main.render(result)
    assert "Triton, dynamic batching on" in table and "380.0" in table and "naive FastAPI" in table


def test_http_head_parsing():
    assert closed_loop.parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 42\r\nserver: uvicorn\r\n\r\n") == (200, 42)
    assert closed_loop.parse_head(b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: 7\r\n\r\n") == (422, 7)


def test_closed_loop_counts_answers_and_errors():
    calls = 0

    async def make():
        async def call(text: str) -> None:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.001)
            if calls % 5 == 0:
                raise RuntimeError("boom")

        async def close() -> None:
            return None

        return call, close

    point = asyncio.run(closed_loop.run(make, ["a", "b"], concurrency=3, seconds=0.1, warmup=0))
    assert point["concurrency"] == 3 and point["answers"] > 0
    assert point["errors"].get("RuntimeError", 0) > 0 and point["answers"] + point["errors"]["RuntimeError"] == calls


@pytest.mark.parametrize("flavour, kind, backend", [("gpu", "KIND_GPU", "onnxruntime"), ("cpu", "KIND_CPU", "python")])
def test_the_speed_command_plans_each_flavour_without_starting_anything(flavour, kind, backend, tmp_path, capsys):
    """Issue 29 "On a GPU": `python -m benchmarks.speed --flavour gpu` is the command a GPU node runs; its dry run
    renders the flavour's configs and names the repository, the stacks and the ceiling's providers, so the GPU path
    is exercised on CPU. Red when --flavour is ignored (the cpu repository and CPU instances planned)."""
    import json

    assert speed_main.main(["--flavour", flavour, "--dry-run", "--build-dir", str(tmp_path), "--queue-delay-us", "1000"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["flavour"] == flavour and plan["repository"].endswith(f"triton/{flavour}")
    onnx = plan["models"]["intent_classifier_onnx"]
    assert onnx["backend"] == backend and {g["kind"] for g in onnx["instances"]} == {kind}
    assert ("tensorrt" in onnx["accelerators"]) == (flavour == "gpu")
    assert plan["queue_delay_variants_us"] == [1000] and "triton_on" in plan["stacks"]
    assert plan["ceiling_providers"][-1] == "CPUExecutionProvider"
    assert not any(tmp_path.iterdir())  # nothing assembled, nothing started
