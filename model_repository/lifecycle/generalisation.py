"""The flywheel's generalisation, on messages whose phrasings no retrain saw (issue 22.8).

``tests/fixtures/flywheel_unseen/unseen.jsonl`` is a frozen, hand-written set of customer messages -- slang (the
flywheel's new words in new sentences, and other slang), typos, fragments, Japanese script and romaji -- in sentence
frames disjoint from the intent generator's templates (model_repository/datagen/intents.py) and from the flywheel's
traffic (benchmarks/drift/simulate.py ``SLANG``). Its sha256 is in ``FROZEN.sha256`` beside it; a test fails if
it changes. It is a judge only: no training, checkpoint selection or threshold is tuned on it.

The model gate scores every challenger and the champion on it (``unseen_drop``: the challenger may not lose more
than the other drops allow); a flywheel retrain must also *gain* on it (``unseen_gain``, an optional check
``mangaassist retrain`` turns on), so a retrain that learnt its own rows by heart and nothing else -- perfect on
its templates, flat here -- is not shadowed as an improvement.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
UNSEEN_SET = ROOT / "tests" / "fixtures" / "flywheel_unseen" / "unseen.jsonl"
#: the intents the flywheel's slang traffic is labelled with (benchmarks/drift/simulate.py SLANG)
TARGET_INTENTS = ("product_question", "recommendation", "return_refund", "price_deal")


def load_unseen(path: Path = UNSEEN_SET) -> list[dict[str, str]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def figures(probs: Callable[[list[str]], np.ndarray], rows: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """Accuracy on ``rows`` overall, on the flywheel's target intents, per kind and per label. ``probs`` takes raw
    messages (the caller adds the glosses the served path adds)."""
    from server.intents import LABEL_TO_ID

    pred = probs([r["text"] for r in rows]).argmax(1)
    right = [int(p) == LABEL_TO_ID[r["label"]] for p, r in zip(pred, rows)]

    def acc(keep: Callable[[Mapping[str, str]], bool]) -> float:
        hits = [ok for ok, r in zip(right, rows) if keep(r)]
        return round(float(np.mean(hits)), 4) if hits else float("nan")

    kinds = sorted({r.get("kind", "") for r in rows})
    labels = sorted({r["label"] for r in rows})
    return {"n": len(rows), "accuracy": acc(lambda r: True),
            "target_accuracy": acc(lambda r: r["label"] in TARGET_INTENTS),
            "target_n": sum(r["label"] in TARGET_INTENTS for r in rows),
            "by_kind": {k: acc(lambda r, k=k: r.get("kind", "") == k) for k in kinds},
            "by_label": {lab: acc(lambda r, lab=lab: r["label"] == lab) for lab in labels}}
