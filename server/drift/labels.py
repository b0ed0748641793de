"""The flywheel's labelling queue: low-confidence (and thumbs-down) turns from the traffic log out to a
labelling tool, labelled turns back in as training rows.

Format: Label Studio's task JSON (``[{"data": {...}, "predictions": [...]}]``; import with the
:data:`LABEL_CONFIG` labelling interface) and its JSON export (``annotations[].result[].value.choices``). The
messages are the log's: already redacted by the PII guardrail. The training rows use the intent dataset's
shape (``{"text", "label"}``, .build/data/intents/train.jsonl) -- where ``mangaassist retrain`` (lifecycle I's
train -> gate -> shadow) picks them up; until it exists, ``label-import --out`` names the file to extend.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from server.intents import INTENT_LABELS

LABEL_CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="intent" toName="text" choice="single">'
    + "".join(f'<Choice value="{label}"/>' for label in INTENT_LABELS)
    + "</Choices></View>"
)


DOWN = ("down", "thumbs_down")


def sample(records: Sequence[Any], *, below: float = 0.7, limit: int = 200, seed: int = 0,
           feedback: Mapping[str, str] | None = None) -> list[Any]:
    """Every thumbs-down turn, then a random sample of model-decided turns with confidence < ``below``;
    one per distinct message, at most ``limit``. ``feedback``: request id -> kind from the Feedback RPC's
    table (:func:`read_feedback`), for turns whose logged row does not carry it yet."""
    feedback = feedback or {}
    seen: set[str] = set()
    down, low = [], []
    for r in records:
        text = r.message.strip()
        if not text or text in seen or r.blocked:
            continue
        if r.feedback in DOWN or feedback.get(r.request_id) in DOWN:
            down.append(r)
        elif r.intent and not r.rule_decided and r.confidence < below:
            low.append(r)
        else:
            continue
        seen.add(text)
    random.Random(seed).shuffle(low)
    return (down + low)[:limit]


def read_feedback(db_path: str) -> dict[str, str]:
    """request id -> the latest feedback kind, from the Feedback RPC's SQLite table (server/rollout/feedback.py,
    ``rollout.feedback_db``: request_id, kind, ...). {} when there is no such file or table."""
    import sqlite3

    if not db_path or not Path(db_path).is_file():
        return {}
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        try:
            rows = db.execute("SELECT request_id, kind FROM feedback ORDER BY at").fetchall()
        except sqlite3.OperationalError:
            return {}
    return {request_id: kind for request_id, kind in rows}


def to_label_studio(records: Iterable[Any]) -> list[dict[str, Any]]:
    return [
        {
            "data": {"text": r.message, "request_id": r.request_id, "predicted_intent": r.intent,
                     "confidence": round(r.confidence, 4), "feedback": r.feedback,
                     "model_versions": dict(r.model_versions)},
            "predictions": [{
                "model_version": dict(r.model_versions).get("intent_classifier", ""),
                "score": round(r.confidence, 4),
                "result": [{"from_name": "intent", "to_name": "text", "type": "choices",
                            "value": {"choices": [r.intent]}}],
            }] if r.intent in INTENT_LABELS else [],
        }
        for r in records
    ]


def from_label_studio(exported: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """(text, label) rows from a Label Studio JSON export: each task's latest non-cancelled annotation."""
    rows = []
    for task in exported:
        annotations = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
        if not annotations:
            continue
        label = None
        for item in annotations[-1].get("result", []):
            if item.get("from_name") == "intent":
                choices = item.get("value", {}).get("choices", [])
                label = choices[0] if choices else None
        if label not in INTENT_LABELS:
            continue
        data = task.get("data", {})
        rows.append({"text": data["text"], "label": label, "source": "flywheel",
                     "request_id": data.get("request_id", "")})
    return rows


def append_training(rows: Sequence[dict[str, str]], path: Path) -> int:
    """Append rows whose text is not in the file yet; returns how many were added."""
    existing = set()
    if path.is_file():
        existing = {json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()}
    new = [r for r in rows if r["text"] not in existing]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        for r in new:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return len(new)
