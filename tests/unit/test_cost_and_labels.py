"""Cost accounting (Triton cost per inference from its own counters, the daily report) and the flywheel's
labelling queue (traffic log -> Label Studio tasks -> labelled export -> training rows)."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from server.drift import labels
from model_repository.lifecycle.drift import main as drift_cli
from server.traffic.cost import TritonCostMonitor, daily_costs, ensemble_names, parse_triton_metrics, triton_cost
from server.traffic.record import TrafficRecord
from server.traffic.store import SQLiteTrafficStore

pytestmark = pytest.mark.L0

DAY = 86400.0


def triton_text(classifier_us: float, classifier_n: int, embedder_us: float, embedder_n: int) -> str:
    """Triton's exposition format: HELP and TYPE right above each family (a typed counter's samples parse as
    ``<name>_total``), a summary and an unlabelled gauge beside them."""
    models = (("intent_classifier_onnx", classifier_us, classifier_n), ("query_embedder_onnx", embedder_us, embedder_n))
    lines = []
    for family, share in (("nv_inference_count", None), ("nv_inference_compute_infer_duration_us", 0.9),
                          ("nv_inference_compute_input_duration_us", 0.1)):
        lines += [f"# HELP {family} Cumulative ...", f"# TYPE {family} counter"]
        lines += [f'{family}{{model="{m}",version="1"}} {n if share is None else us * share}' for m, us, n in models]
    lines += ["# HELP nv_inference_request_summary_us Summary", "# TYPE nv_inference_request_summary_us summary",
              'nv_inference_request_summary_us_count{model="intent_classifier_onnx",version="1"} 10',
              'nv_inference_request_summary_us_sum{model="intent_classifier_onnx",version="1"} 3000',
              'nv_inference_request_summary_us{model="intent_classifier_onnx",version="1",quantile="0.5"} 200',
              "# HELP nv_cpu_utilization CPU", "# TYPE nv_cpu_utilization gauge", "nv_cpu_utilization 0.5"]
    return "\n".join(lines) + "\n"


def test_cost_per_inference_spreads_the_instance_price_over_busy_time():
    before = parse_triton_metrics(triton_text(0, 0, 0, 0), at=0.0)
    # 100 s at $3.60/h = $0.10; 30 s of busy time: classifier 20 s for 1,000 rows, embedder 10 s for 2,000 rows
    after = parse_triton_metrics(triton_text(20e6, 1000, 10e6, 2000), at=100.0)
    cost = triton_cost(before, after, usd_per_hour=3.6, capacity=1.0)
    assert cost.utilisation == pytest.approx(0.30)
    assert cost.per_inference_usd["intent_classifier_onnx"] == pytest.approx(0.10 * 2 / 3 / 1000)
    assert cost.per_inference_usd["query_embedder_onnx"] == pytest.approx(0.10 / 3 / 2000)
    # at 100% utilisation an inference would cost its busy seconds' price only
    assert cost.per_inference_full_usd["intent_classifier_onnx"] == pytest.approx(0.001 * 20 / 1000)


def test_an_ensemble_is_not_counted_twice(tmp_path):
    """An ensemble reports its steps' busy time again: left out of the shares, it costs the sum of its steps."""
    def text(us: float, n: int) -> str:
        out = []
        for family, scale in (("nv_inference_count", None), ("nv_inference_compute_infer_duration_us", 1.0)):
            out += [f"# TYPE {family} counter"]
            for model, part in (("tok", 0.2), ("onnx", 0.8), ("ens", 1.0)):
                out.append(f'{family}{{model="{model}",version="1"}} {n if scale is None else us * part}')
        return "\n".join(out) + "\n"

    before, after = parse_triton_metrics(text(0, 0), 0.0), parse_triton_metrics(text(10e6, 100), 100.0)
    cost = triton_cost(before, after, usd_per_hour=3.6, ensembles=frozenset({"ens"}))
    assert cost.utilisation == pytest.approx(0.10)
    assert cost.per_inference_usd["ens"] == pytest.approx(cost.per_inference_usd["tok"] + cost.per_inference_usd["onnx"])
    (tmp_path / "ens").mkdir()
    (tmp_path / "ens" / "config.pbtxt").write_text('name: "ens"\nplatform: "ensemble"\n')
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "config.pbtxt").write_text('name: "onnx"\nbackend: "python"\n')
    assert ensemble_names(tmp_path) == {"ens"}


async def test_the_cost_monitor_sets_its_gauges_from_two_scrapes():
    texts = iter([triton_text(0, 0, 0, 0), triton_text(5e6, 500, 5e6, 500)])
    registry = CollectorRegistry()
    monitor = TritonCostMonitor("http://triton/metrics", 3.6, 1.0, 60, registry, fetch=lambda url: next(texts))
    assert await monitor.sample() is None  # the first scrape is the baseline
    cost = await monitor.sample()
    assert cost is not None and cost.inferences["query_embedder_onnx"] == 500
    assert registry.get_sample_value("mangaassist_triton_cost_per_inference_usd", {"model": "query_embedder_onnx"}) > 0


def test_daily_cost_report_from_the_traffic_log(tmp_path, capsys):
    start = 20_000 * DAY  # a UTC midnight
    rows = [TrafficRecord(ts=start + 6 * 3600 + i * 600, request_id=f"a{i}", tier="template") for i in range(100)]
    rows += [TrafficRecord(ts=start + DAY + i, request_id=f"b{i}", tier="large", input_tokens=1000, output_tokens=200,
                           cost_usd=0.006) for i in range(10)]
    days = daily_costs(rows, usd_per_hour=1.0)
    assert [d["turns"] for d in days] == [100, 10]
    assert days[0]["triton_usd"] == 18.0 and days[0]["llm_usd"] == 0.0  # the log starts at 06:00: 18 hours that day
    assert days[1]["tiers"]["large"]["input_tokens"] == 10_000 and days[1]["llm_usd"] == pytest.approx(0.06)
    assert days[1]["triton_hours"] == pytest.approx(1 / 60, abs=0.01)  # the log's last day ends at its last turn
    store = SQLiteTrafficStore(str(tmp_path / "t.db"))
    store.write(rows)
    store.close()
    assert drift_cli(["cost", "--sqlite", str(tmp_path / "t.db"), "--out", str(tmp_path / "cost"), "--usd-per-hour", "1"]) == 0
    assert json.loads((tmp_path / "cost" / "daily_cost.json").read_text())["days"] == days


def test_low_confidence_and_thumbs_down_turns_round_trip_through_label_studio(tmp_path):
    rows = [
        TrafficRecord(ts=1, request_id="low", intent="product_question", confidence=0.41, message="is it bussin"),
        TrafficRecord(ts=2, request_id="sure", intent="order_status", confidence=0.98, message="where is my order"),
        TrafficRecord(ts=3, request_id="rule", intent="chitchat", confidence=1.0, rule_decided=True, message="hi"),
        TrafficRecord(ts=4, request_id="down", intent="policy_faq", confidence=0.95, message="can i yeet it back", feedback="down"),
        TrafficRecord(ts=5, request_id="dup", intent="product_question", confidence=0.3, message="is it bussin"),
    ]
    picked = labels.sample(rows, below=0.7)
    assert [r.request_id for r in picked] == ["down", "low"]  # thumbs-down first; one per message; no rule/sure turns
    tasks = labels.to_label_studio(picked)
    assert tasks[0]["data"]["text"] == "can i yeet it back" and tasks[0]["predictions"][0]["result"][0]["value"] == {"choices": ["policy_faq"]}
    # what Label Studio's JSON export looks like after a labeller chose the intents (one task skipped)
    exported = [
        {**tasks[0], "annotations": [{"was_cancelled": False, "result": [
            {"from_name": "intent", "to_name": "text", "type": "choices", "value": {"choices": ["return_refund"]}}]}]},
        {**tasks[1], "annotations": [{"was_cancelled": True, "result": []}]},
    ]
    rows_in = labels.from_label_studio(exported)
    assert rows_in == [{"text": "can i yeet it back", "label": "return_refund", "source": "flywheel", "request_id": "down"}]
    out = tmp_path / "train_extra.jsonl"
    assert labels.append_training(rows_in, out) == 1 and labels.append_training(rows_in, out) == 0  # no duplicates
    assert '<Choice value="return_refund"/>' in labels.LABEL_CONFIG


def test_thumbs_down_from_the_feedback_rpc_table_is_exported_first(tmp_path):
    import sqlite3

    db = tmp_path / "feedback.db"
    with sqlite3.connect(db) as conn:  # the table server/rollout/feedback.py appends to (rollout.feedback_db)
        conn.execute("CREATE TABLE feedback (request_id TEXT, session_id TEXT, kind TEXT, comment TEXT, versions TEXT, "
                     "intent TEXT, confidence REAL, at REAL)")
        conn.execute("INSERT INTO feedback VALUES ('sure', 's', 'thumbs_down', '', '{}', 'order_status', 0.98, 1.0)")
    rows = [TrafficRecord(ts=1, request_id="low", intent="product_question", confidence=0.41, message="is it bussin"),
            TrafficRecord(ts=2, request_id="sure", intent="order_status", confidence=0.98, message="where is my order")]
    picked = labels.sample(rows, feedback=labels.read_feedback(str(db)))
    assert [r.request_id for r in picked] == ["sure", "low"]
    assert labels.read_feedback(str(tmp_path / "missing.db")) == {}
