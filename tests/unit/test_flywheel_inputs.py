"""L0: the flywheel's inputs -- labelled files read as a labeller's tool writes them, the replay sample, refusals.
The loop itself (train -> Triton load -> gate -> shadow, fixing what the champion got wrong) is
tests/e2e/test_flywheel.py on a real tritonserver."""

from __future__ import annotations

import io
import json
import random
from collections import Counter

import pytest

from model_repository.lifecycle import cli as lifecycle_cli
from model_repository.lifecycle.flywheel import read_labelled
from model_repository.lifecycle.versions import _balanced

pytestmark = pytest.mark.L0


def _task(text: str, label: str | None, cancelled: bool = False) -> dict:
    result = [{"from_name": "intent", "to_name": "text", "type": "choices", "value": {"choices": [label]}}] if label else []
    return {"data": {"text": text, "request_id": "r"}, "annotations": [{"was_cancelled": cancelled, "result": result}]}


def test_label_studio_export_and_jsonl_rows_read_alike(tmp_path):
    export = tmp_path / "labelled.json"
    export.write_text(json.dumps([_task("yeet it back pls", "return_refund"), _task("skipped", None),
                                  _task("cancelled", "chitchat", cancelled=True)]))
    assert [(r["text"], r["label"]) for r in read_labelled(export)] == [("yeet it back pls", "return_refund")]
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "no cap is it bussin", "label": "product_question"}) + "\n")
    assert read_labelled(rows) == [{"text": "no cap is it bussin", "label": "product_question", "source": "flywheel"}]


def test_rows_with_an_unknown_label_are_refused(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"text": "hi", "label": "greeting"}) + "\n")
    with pytest.raises(ValueError, match="greeting"):
        read_labelled(rows)


def test_the_replay_keeps_every_class_in_view():
    rows = [{"text": f"{label}{i}", "label": label} for label, n in (("a", 500), ("b", 40), ("c", 8)) for i in range(n)]
    sample = _balanced(rows, 90, random.Random(0))
    counts = Counter(r["label"] for r in sample)
    assert counts == Counter(a=42, b=40, c=8)  # every row of the small classes, the rest from the big one
    assert len({r["text"] for r in sample}) == 90  # no row twice


def test_retrain_without_annotations_is_refused_before_training(tmp_path):
    export = tmp_path / "tasks.json"  # label-export's output, nobody labelled it yet
    export.write_text(json.dumps([{"data": {"text": "hi"}, "predictions": []}]))
    err = io.StringIO()
    rc = lifecycle_cli.main(["retrain", str(export), "--lifecycle-dir", str(tmp_path / "life"),
                             "--build-dir", str(tmp_path / "no-build")], err)
    assert rc == lifecycle_cli.EXIT_REFUSED
    assert not (tmp_path / "life" / "models").exists()  # nothing trained
