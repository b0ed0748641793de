"""The human half of helpfulness: a stratified sample of answers out to raters, their 1-5 scores back in.

``export_sample`` writes ``id,intent,message,answer,reference,score`` (score empty) for ``n`` records drawn
from every intent x source stratum in proportion to its size (every stratum at least once while ``n``
allows), shuffled within a stratum by ``seed``: the same run and seed give the same sheet.
``import_scores`` reads the sheet back (rows with an empty score are skipped).
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

COLUMNS = ("id", "intent", "message", "answer", "reference", "score")
SAMPLE_SIZE = 50


def stratified_sample(rows: Sequence[dict[str, Any]], n: int = SAMPLE_SIZE, seed: int = 1234) -> list[dict[str, Any]]:
    strata: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["id"]):
        strata[(row["intent"], row["source"])].append(row)
    for key, members in strata.items():
        random.Random(f"{seed}:{key[0]}:{key[1]}").shuffle(members)
    total = sum(len(m) for m in strata.values())
    if total <= n:
        return [r for key in sorted(strata) for r in strata[key]]
    keys = sorted(strata)
    quota = {k: n * len(strata[k]) / total for k in keys}
    take = {k: min(len(strata[k]), max(1, int(quota[k]))) for k in keys} if len(keys) <= n else {k: int(quota[k]) for k in keys}
    while sum(take.values()) > n:  # the at-least-one floor overshot: trim where it is most over quota
        k = max((k for k in keys if take[k] > 1), key=lambda k: (take[k] - quota[k], k))
        take[k] -= 1
    while sum(take.values()) < n:  # largest remainders first
        open_keys = [k for k in keys if take[k] < len(strata[k])]
        k = max(open_keys, key=lambda k: (quota[k] - take[k], k))
        take[k] += 1
    return [r for k in keys for r in strata[k][: take[k]]]


def export_sample(rows: Sequence[dict[str, Any]], path: str | Path, n: int = SAMPLE_SIZE, seed: int = 1234) -> int:
    """Write the rater sheet; returns how many rows it has. Records whose call failed are not rated."""
    sample = stratified_sample([r for r in rows if not r.get("error")], n, seed)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for r in sample:
            writer.writerow({**{c: r.get(c, "") for c in COLUMNS}, "score": ""})
    return len(sample)


def import_scores(path: str | Path) -> dict[str, Any]:
    """Mean score, per-intent means and the share of 4s and 5s. A score outside 1-5 is an error."""
    scores: list[tuple[str, float]] = []
    with open(path, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            raw = (row.get("score") or "").strip()
            if not raw:
                continue
            try:
                score = float(raw)
            except ValueError:
                raise ValueError(f"{path}:{line}: score {raw!r} is not a number") from None
            if not 1 <= score <= 5:
                raise ValueError(f"{path}:{line}: score {raw!r} is outside 1-5")
            scores.append((row.get("intent") or "", score))
    if not scores:
        return {"n": 0, "mean": None, "share_ge_4": None, "per_intent": {}}
    per_intent: dict[str, list[float]] = defaultdict(list)
    for intent, score in scores:
        per_intent[intent].append(score)
    values = [s for _, s in scores]
    return {
        "n": len(values),
        "mean": round(sum(values) / len(values), 3),
        "share_ge_4": round(sum(v >= 4 for v in values) / len(values), 4),
        "per_intent": {k: round(sum(v) / len(v), 3) for k, v in sorted(per_intent.items())},
    }
