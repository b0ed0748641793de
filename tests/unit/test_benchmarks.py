"""L0 tests of the benchmark tooling: perf_analyzer CSV parsing, input-data generation, Triton statistics
deltas, summary rendering, the load generator's arrivals. No server, no build."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from benchmarks import common
from benchmarks.perf_analyzer import results as res
from benchmarks.perf_analyzer.binary import PerfAnalyzerUnavailable, check_libb64
from benchmarks.perf_analyzer.inputs import Workloads, bucket_for, composing_models, input_data, onnx_model_of
from benchmarks.perf_analyzer.sweep import parse_concurrency, perf_command
from benchmarks.service.load import poisson_arrivals
from benchmarks.service.load import render as render_load
from model_repository import spec

pytestmark = pytest.mark.L0

# Written by perf_analyzer 2.51 (-f) for the intent_classifier ensemble at concurrency 2.
PA_CSV = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,"
    "Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency\n"
    "2,40.6947,12,8119,2,104,39899,1053,3,47013,80052,90426,111416\n"
)


# ----------------------------------------------------------------------------------- CSV parsing
def test_parse_perf_csv_converts_microseconds_to_ms():
    (row,) = res.parse_perf_csv(PA_CSV)
    assert row["concurrency"] == 2 and isinstance(row["concurrency"], int)
    assert row["throughput"] == pytest.approx(40.6947)
    assert row["p50_ms"] == pytest.approx(47.013)
    assert row["p90_ms"] == pytest.approx(80.052)
    assert row["p99_ms"] == pytest.approx(111.416)
    assert row["server_compute_infer_ms"] == pytest.approx(39.899)


def test_parse_perf_csv_several_rows_optional_columns_and_trailing_sections():
    text = (
        "Concurrency,Inferences/Second,Client Send,p50 latency,p90 latency,p95 latency,p99 latency,Avg latency,"
        "request/response,response wait\n"
        "1,180.5,10,5400,5900,6000,6500,5500,20,5300\n"
        "4,410.0,11,9000,11000,12000,15000,9500,21,9100\n"
        "\n"
        "Concurrency,Metric A\n1,99\n"
    )
    rows = res.parse_perf_csv(text)
    assert [r["concurrency"] for r in rows] == [1, 4]
    assert rows[1]["p99_ms"] == pytest.approx(15.0)
    assert rows[0]["avg_ms"] == pytest.approx(5.5)
    assert "server_queue_ms" not in rows[0]


@pytest.mark.parametrize("text", ["", "a,b\n1,2\n"])
def test_parse_perf_csv_rejects_other_files(text):
    with pytest.raises(ValueError):
        res.parse_perf_csv(text)


# ----------------------------------------------------------------------------------- inputs
@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    (d / "intents").mkdir(parents=True)
    (d / "triples").mkdir()
    intents = [{"text": t, "label": "chitchat", "template_id": "x"} for t in ("hi", "is one piece vol 3 in stock", "hi", " ")]
    (d / "intents" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in intents))
    docs = [{"doc_id": "p1", "source_type": "product", "text": "One Piece volume 3", "asin": "B0AAAAAAAA"},
            {"doc_id": "p2", "source_type": "product", "text": "One Piece volume 4", "asin": "B0BBBBBBBB"}]
    (d / "documents.jsonl").write_text("".join(json.dumps(r) + "\n" for r in docs))
    (d / "triples" / "test.jsonl").write_text(json.dumps({"query": "one piece 3", "positive_doc_id": "p1", "negative_doc_id": "p2"}) + "\n")
    return d


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    """A repository with a tiny word-level tokenizer.json for every tokenizer model."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[PAD]": 0, "[UNK]": 1, "hi": 2, "is": 3, "one": 4, "piece": 5, "vol": 6, "3": 7, "in": 8, "stock": 9}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    for t in spec.TOKENIZERS:
        (tmp_path / "repo" / t.name / "1").mkdir(parents=True)
        tok.save(str(tmp_path / "repo" / t.name / "1" / "tokenizer.json"))
    return tmp_path / "repo"


def test_text_input_data_is_one_string_per_request(data_dir, repo_dir):
    w = Workloads(data_dir, repo_dir)
    payload = input_data(w.rows("intent_classifier"))
    assert payload["data"] == [
        {"TEXT": {"content": ["hi"], "shape": [1]}},
        {"TEXT": {"content": ["is one piece vol 3 in stock"], "shape": [1]}},
    ]  # unique, blank lines dropped
    json.dumps(payload)  # serialisable as-is


def test_pair_input_data_alternates_positive_and_hard_negative(data_dir, repo_dir):
    payload = input_data(Workloads(data_dir, repo_dir).rows("reranker"))
    assert [e["PASSAGE"]["content"][0] for e in payload["data"]] == ["One Piece volume 3", "One Piece volume 4"]
    assert all(e["QUERY"] == {"content": ["one piece 3"], "shape": [1]} for e in payload["data"])


def test_token_input_data_is_bucket_padded_like_the_served_tokenizer(data_dir, repo_dir):
    rows = Workloads(data_dir, repo_dir).rows("intent_classifier_onnx")
    payload = input_data(rows)
    first, second = payload["data"]
    assert set(first) == set(spec.TOKEN_INPUTS)
    assert first["input_ids"]["shape"] == [16]  # smallest intent bucket
    assert first["input_ids"]["content"][:2] == [2, 0]
    assert first["attention_mask"]["content"][:2] == [1, 0]
    assert second["input_ids"]["content"][:7] == [3, 4, 5, 6, 7, 8, 9]
    assert all(isinstance(v, int) for v in second["token_type_ids"]["content"])


def test_ceiling_batch_has_one_bucket_for_the_whole_batch(data_dir, repo_dir):
    feed = Workloads(data_dir, repo_dir).batch("reranker_onnx", 8)
    assert feed["input_ids"].shape == (8, 32) and feed["input_ids"].dtype == np.int64


def test_adapter_rows_are_unit_vectors_without_a_build(data_dir, repo_dir):
    rows = Workloads(data_dir, repo_dir, limit=5).rows("embedding_adapter")
    assert len(rows) == 5
    vec = rows[0]["EMBEDDING"]
    assert vec.shape == (spec.EMBED_DIM,) and np.linalg.norm(vec) == pytest.approx(1.0, rel=1e-5)
    entry = input_data(rows)["data"][0]["EMBEDDING"]
    assert entry["shape"] == [spec.EMBED_DIM] and len(entry["content"]) == spec.EMBED_DIM


def test_unknown_model_and_empty_rows_are_errors(data_dir, repo_dir):
    with pytest.raises(ValueError):
        Workloads(data_dir, repo_dir).rows("no_such_model")
    with pytest.raises(ValueError):
        input_data([])


def test_model_topology_helpers():
    assert bucket_for(3, (16, 32, 64)) == 16
    assert bucket_for(33, (64, 16, 32)) == 64
    assert bucket_for(500, (16, 32, 64)) == 64
    assert onnx_model_of("reranker") == "reranker_onnx"
    assert onnx_model_of("embedding_adapter") == "embedding_adapter"
    assert composing_models("query_embedder") == ("embed_tokenizer", "query_embedder_onnx")
    assert composing_models("embedding_adapter") == ()


# ----------------------------------------------------------------------------------- command line
def test_concurrency_list_and_perf_command():
    assert parse_concurrency("4,1,2,2") == [1, 2, 4]
    cmd = perf_command(Path("/bin/pa"), "reranker", "127.0.0.1:8001", 8, Path("in.json"), Path("o.csv"),
                       measurement_ms=3000, stability=25, max_trials=4)
    joined = " ".join(cmd)
    for part in ("-m reranker", "-i grpc", "-u 127.0.0.1:8001", "--concurrency-range 8:8:1",
                 "--measurement-interval 3000", "--input-data in.json", "-f o.csv"):
        assert part in joined


def test_missing_libb64_names_the_package(tmp_path):
    with pytest.raises(PerfAnalyzerUnavailable, match="apt-get install libb64-0d"):
        check_libb64(dirs=(str(tmp_path),), find_library=lambda name: None)
    check_libb64(dirs=(str(tmp_path),), find_library=lambda name: "libb64.so.0d")


# ----------------------------------------------------------------------------------- Triton statistics
def _stats(name: str, inferences: int, executions: int, queue_ns: int, batches: dict[int, int]) -> dict:
    return {"model_stats": [{
        "name": name, "inference_count": str(inferences), "execution_count": str(executions),
        "inference_stats": {"success": {"count": str(inferences), "ns": "0"}, "queue": {"count": str(inferences), "ns": str(queue_ns)},
                            "compute_infer": {"count": str(inferences), "ns": str(inferences * 2_000_000)}},
        "batch_stats": [{"batch_size": str(b), "compute_infer": {"count": str(c), "ns": "1"}} for b, c in batches.items()],
    }]}


def test_stats_delta_gives_average_batch_size_per_run():
    before = res.stats_snapshot(_stats("reranker_onnx", 100, 100, 0, {1: 100}))
    after = res.stats_snapshot(_stats("reranker_onnx", 420, 180, 320 * 1_000_000, {1: 120, 4: 40, 8: 20}))
    delta = res.stats_delta(before, after, ["reranker_onnx", "missing_model"])
    d = delta["reranker_onnx"]
    assert d["inference_count"] == 320 and d["execution_count"] == 80
    assert d["avg_batch_size"] == 4.0  # the dynamic batcher merged requests
    assert d["avg_queue_ms"] == pytest.approx(1.0)
    assert d["batch_size_histogram"] == {"1": 20, "4": 40, "8": 20}
    assert delta["missing_model"]["avg_batch_size"] is None


# ----------------------------------------------------------------------------------- summary
def _series(model: str, batching: str, points: list[tuple[int, float, float, float]], ceiling: float | None) -> dict:
    compute = onnx_model_of(model)
    return {
        "model": model, "batching": batching, "compute_model": compute,
        "ceiling": {"best_rows_per_s": ceiling, "best_batch": 32} if ceiling else None,
        "points": [{"concurrency": c, "throughput": t, "p50_ms": p50, "p99_ms": p99,
                    "triton_stats": {compute: {"avg_batch_size": 1.0 if batching == "off" else c / 2}}}
                   for c, t, p50, p99 in points],
    }


DEVICE = {"cpu_model": "Test CPU", "usable_cores": 2, "gpu": "no GPU", "timestamp_utc": "2026-01-01T00:00:00Z"}


def test_summary_marks_best_concurrency_and_percent_of_ceiling():
    series = [
        _series("intent_classifier", "on", [(1, 100.0, 9.0, 12.0), (4, 300.0, 12.0, 20.0), (16, 280.0, 50.0, 90.0)], 400.0),
        _series("intent_classifier", "off", [(1, 95.0, 9.5, 13.0), (4, 150.0, 25.0, 40.0)], 400.0),
    ]
    md = res.render_summary(series, DEVICE, command="python -m benchmarks.perf_analyzer.sweep")
    assert "Test CPU (2 usable cores, no GPU)" in md
    lines = [line for line in md.splitlines() if line.startswith("| `intent_classifier`")]
    assert len(lines) == 5
    best_on = next(line for line in lines if "4 ★" in line and "| on |" in line)
    assert "300.0" in best_on and "75%" in best_on and "400 (b=32)" in best_on and "2.00" in best_on
    best_off = next(line for line in lines if "★" in line and "| off |" in line)
    assert "38%" in best_off
    assert sum("★" in line for line in lines) == 2  # one best per series


def test_results_csv_and_plot(tmp_path):
    series = [_series("reranker", "on", [(1, 10.0, 90.0, 120.0), (2, 18.0, 100.0, 130.0)], 30.0),
              _series("reranker", "off", [(1, 9.0, 95.0, 125.0)], 30.0)]
    text = res.results_csv(series)
    assert text.splitlines()[0].startswith("model,batching,concurrency,throughput")
    assert len(text.strip().splitlines()) == 4
    png = res.plot(series, tmp_path / "p.png")
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"
    assert res.best_point([]) is None


# ----------------------------------------------------------------------------------- service helpers
def test_poisson_arrivals_are_seeded_sorted_and_about_the_rate():
    a = poisson_arrivals(20.0, 30.0, random.Random(1))
    assert a == poisson_arrivals(20.0, 30.0, random.Random(1))
    assert a == sorted(a) and all(0 < t < 30.0 for t in a)
    assert 500 < len(a) < 700
    with pytest.raises(ValueError):
        poisson_arrivals(0, 1.0, random.Random(0))


def test_load_report_lists_rates_errors_and_stages():
    run = {"target_rate": 10.0, "offered_rate": 9.8, "achieved_rate": 9.7, "sent": 196,
           "outcomes": {"OK": 190, "RESOURCE_EXHAUSTED": 6}, "error_rate": 0.0306,
           "e2e": {"p50_ms": 40.0, "p99_ms": 180.0}, "degraded": {"rerank_skipped": 3},
           "stages": {"classify": {"p50_ms": 20.0, "p99_ms": 60.0}, "zz_custom": {"p50_ms": 1.0, "p99_ms": 2.0}}}
    md = render_load([run], DEVICE, "python -m benchmarks.service.load", {"service_settings": {}})
    assert "| 10 | 9.8 | 9.7 | 196 | 40.0 | 180.0 | 3.1% {'RESOURCE_EXHAUSTED': 6} | — | rerank_skipped: 3 |" in md
    run.update(rerank_eligible=120, rerank_applied=117)
    md = render_load([run], DEVICE, "python -m benchmarks.service.load", {"service_settings": {}})
    assert "| 3.1% {'RESOURCE_EXHAUSTED': 6} | 117/120 | rerank_skipped: 3 |" in md
    assert "| classify | 20.0 / 60.0 |" in md and "| zz_custom | 1.0 / 2.0 |" in md
    assert "production defaults" in md


def test_percentile_matches_numpy_and_cpu_model_parsing():
    xs = [5.0, 1.0, 3.0, 2.0, 4.0, 10.0]
    for q in (0, 50, 90, 99, 100):
        assert common.percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert np.isnan(common.percentile([], 50))
    assert common.cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"
    assert common.device_info()["gpu"] in ("no GPU", "NVIDIA device present (unused: CPU flavour)")


def test_queue_stall_variants_rewrite_the_real_config():
    """The stall experiment is only meaningful if each variant really changes the rendered config."""
    from benchmarks.perf_analyzer.queue_stall import VARIANTS

    base = spec.to_pbtxt(spec.render("cpu")["embedding_adapter"])
    rendered = {name: rewrite(base) for name, (_, rewrite) in VARIANTS.items()}
    assert "max_queue_size" in rendered["policy_1_instance"] and "count: 1\n" in rendered["policy_1_instance"]
    assert "count: 2\n" in rendered["policy_2_instances"] and "count: 4\n" in rendered["policy_4_instances"]
    assert "default_queue_policy" not in rendered["no_policy_1_instance"]
    assert "dynamic_batching" in rendered["no_policy_1_instance"]
    assert "dynamic_batching" not in rendered["no_batching_1_instance"]
    assert len(set(rendered.values())) == len(VARIANTS)


# ----------------------------------------------------------------------------------- ceiling and CPU shares
def test_ceiling_covers_the_whole_workload_at_every_batch_size(data_dir, repo_dir, monkeypatch):
    """Each batch size is measured on every text perf_analyzer sends, not on an easier first slice."""
    from benchmarks.perf_analyzer import ceiling

    class RecordingSession:
        def __init__(self) -> None:
            self.seen: list[tuple[int, ...]] = []

        def get_inputs(self):
            return [type("I", (), {"name": n})() for n in spec.TOKEN_INPUTS]

        def run(self, _outputs, feed):
            self.seen.append(tuple(feed["input_ids"][:, 0]))

    sess = RecordingSession()
    monkeypatch.setattr(ceiling, "session", lambda path, threads, spinning, **_: sess)
    workloads = Workloads(data_dir, repo_dir, limit=2)  # the two unique texts: "hi" (id 2), "is one piece ..." (id 3)
    report = ceiling.measure_ceiling("intent_classifier_onnx", Path("unused.onnx"), workloads, batch_sizes=(1, 2), seconds=0.0)
    assert set(report["rows_per_s"]) == {"1", "2"} and set(report["cores_used"]) == {"1", "2"}
    assert set(report["rows_per_s_other_spinning"]) == {"1", "2"} and isinstance(report["spinning"], bool)
    assert {(2,), (3,)} <= set(sess.seen)  # batch size 1 ran both texts, not only the first
    assert (2, 3) in sess.seen  # batch size 2: both in one feed
    assert report["feed_widths"]["1"] == [16]


def test_process_label_names_python_backend_stubs_by_model():
    from benchmarks.perf_analyzer.cpu import process_label

    stub = ["/venv/lib/python3.11/site-packages/pytriton/tritonserver/backends/python/triton_python_backend_stub",
            "/build/triton/cpu/intent_tokenizer/1/model.py", "triton_python_backend_shm_region_7", "1048576"]
    assert process_label(stub) == "intent_tokenizer"
    assert process_label(["/opt/tritonserver/bin/tritonserver", "--model-repository", "/m"]) == "tritonserver"
    assert process_label([]) == "?"


def test_cpu_shares_split_the_machine_and_leave_the_rest_idle():
    from benchmarks.perf_analyzer.cpu import cpu_shares

    out = cpu_shares({"tritonserver": 1.0, "m": 0.0, "perf_analyzer": 2.0}, {"tritonserver": 2.0, "m": 1.5, "perf_analyzer": 2.5},
                     wall_s=2.0, cores=2)
    assert out["cpu_seconds"] == {"tritonserver": 1.0, "m": 1.5, "perf_analyzer": 0.5}
    assert out["share"] == {"tritonserver": 0.25, "m": 0.375, "perf_analyzer": 0.125, "idle": 0.25}


def test_cpu_meter_reads_a_real_process_tree(tmp_path):
    """A parent that burns CPU and a child whose command line names a model.py, like a backend stub."""
    import subprocess
    import sys
    import time

    from benchmarks.perf_analyzer.cpu import CLIENT, SERVER, STEAL, CpuMeter

    burn = "import time\nt=time.process_time()\nwhile time.process_time()-t<0.3: pass\ntime.sleep(30)"
    model_py = tmp_path / "repo" / "my_model" / "1" / "model.py"
    parent_code = (
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', {burn!r}, {str(model_py)!r}])\n" + burn
    )
    server = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        meter = CpuMeter(server.pid)
        deadline = time.monotonic() + 30
        snap = meter.snapshot()
        while (snap.get("my_model", 0) < 0.25 or snap[SERVER] < 0.25) and time.monotonic() < deadline:
            time.sleep(0.1)
            snap = meter.snapshot()
        assert snap[SERVER] >= 0.25 and snap["my_model"] >= 0.25 and snap[STEAL] >= 0.0
        before = snap[CLIENT]
        subprocess.run([sys.executable, "-c", burn.replace("time.sleep(30)", "")], check=True)  # a reaped child
        assert meter.snapshot()[CLIENT] - before >= 0.25
    finally:
        for child in __import__("psutil").Process(server.pid).children(recursive=True):
            child.kill()
        server.kill()
        server.wait()


def test_summary_splits_the_ceiling_gap_into_cores_and_per_core_rate():
    series = _series("intent_classifier", "on", [(4, 150.0, 20.0, 40.0)], 300.0)
    series["composing_models"] = ["intent_tokenizer", "intent_classifier_onnx"]
    series["ceiling"]["cores_used"] = {"32": 2.0}
    series["points"][0]["cpu"] = {"cores": 2, "wall_s": 10.0, "share": {
        "intent_classifier_onnx": 0.5, "intent_tokenizer": 0.1, "tritonserver": 0.2, "perf_analyzer": 0.1, "steal": 0.05,
        "idle": 0.05}}
    md = res.render_summary([series], DEVICE)
    row = next(line for line in md.splitlines() if line.startswith("| `intent_classifier` | on | 4 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4:] == ["50%", "50%", "10%", "20%", "10%", "5%", "5%", "1.00 / 2.00", "150 / 150"]
    assert "Where the cores went" in md


# ----------------------------------------------------------------------- hallucination scorer on real answers
def test_real_answer_labels_fact_checker_first_then_hand_label_then_template():
    from benchmarks.hallucination.real_answers import label

    hand = {("a", "small"): {"answer": "It ships free.", "fabricated": True, "note": "invented"}}
    row = {"id": "a", "tier": "small", "answer": "It ships free.", "violations": [], "error": None}
    assert label(row, hand) == (True, "hand label: invented")
    assert label({**row, "answer": "Another text."}, hand)[0] is None  # a label applies to the text it judged
    assert label({**row, "violations": [{"kind": "price"}]}, {})[0] is True
    assert label({**row, "id": "b", "tier": "template"}, hand) == (False, "template (store rows, quoted policy)")


def test_real_answer_precision_and_recall_at_a_threshold():
    from benchmarks.hallucination.real_answers import confusion

    items = [(True, 0.9), (True, 0.6), (True, 0.2), (False, 0.8), (False, 0.1), (False, 0.0)]
    at5 = confusion(items, 0.5)
    assert (at5["tp"], at5["fp"], at5["fn"], at5["tn"]) == (2, 1, 1, 2)
    assert at5["precision"] == pytest.approx(2 / 3, abs=1e-4) and at5["recall"] == pytest.approx(2 / 3, abs=1e-4)
    at7 = confusion(items, 0.7)
    assert (at7["tp"], at7["fp"]) == (1, 1) and confusion([(False, 0.1)], 0.5)["precision"] is None
