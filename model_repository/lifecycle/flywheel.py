"""``mangaassist retrain``: the flywheel's last step. Labelled production messages (a Label Studio JSON export of
``label-export``'s tasks, or JSONL ``{"text", "label"}`` rows) join the flywheel set, a new version of the intent
classifier is trained from the champion on them plus a class-balanced, distilled replay of the training split
(:class:`~model_repository.lifecycle.versions.VersionSpec`), Triton loads it, the model gate judges it against
the champion -- on the frozen unseen-template set too (``RETRAIN_CHECKS``: a retrain must gain on phrasings it
never saw, not only on its own rows) -- and a passing version goes into *shadow* (the rollout file the service
reloads). Promotion stays a person's decision: ``mangaassist model rollout --canary N:10`` then ``promote``.

The flywheel set (``<lifecycle-dir>/data/flywheel.jsonl``) only grows: each retrain learns every message
labelled so far, and its snapshot sits next to the version's weights (lineage: the data hash covers it).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from model_repository.lifecycle import versions
from model_repository.lifecycle.registry import CHAMPION, Registry

FLYWHEEL = Path("data") / "flywheel.jsonl"
#: the gate checks a retrain adds (model_repository/lifecycle/generalisation.py; ``--threshold`` still overrides):
#: on the frozen unseen-template set the retrain must get more of the flywheel's target intents right than the
#: champion (0.005 = at least one more of its 112 target rows, net) and lose no more than the gate's MAX_DROP overall.
#: Gains on the flywheel's own rows and templates are reported beside it, but they are not evidence of learning.
RETRAIN_CHECKS: dict[str, float] = {"unseen_gain": 0.005, "unseen_drop": 0.02}


def read_labelled(path: Path) -> list[dict[str, str]]:
    """Rows from a Label Studio JSON export, or from JSONL (``text``, ``label``); unknown labels refused."""
    from server.drift.labels import from_label_studio
    from server.intents import INTENT_LABELS

    text = Path(path).read_text()
    if text.lstrip().startswith("["):
        return from_label_studio(json.loads(text))
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    bad = sorted({str(r.get("label")) for r in rows if r.get("label") not in INTENT_LABELS or not r.get("text")})
    if bad:
        raise ValueError(f"{path}: rows need a text and one of the intent labels {list(INTENT_LABELS)}; got {bad}")
    return [{"text": r["text"], "label": r["label"], "source": r.get("source", "flywheel")} for r in rows]


def flywheel_accuracy(clf: Any, rows: Sequence[Mapping[str, str]], version: str) -> list[bool]:
    """Per row: does ``version`` on Triton give the row's label (the served input: message + glosses)."""
    import numpy as np

    from server.intents import LABEL_TO_ID
    from server.retrieval.query import expand

    texts = [expand(r["text"]) for r in rows]
    probs = np.concatenate([clf.probs(texts[i : i + 32], version) for i in range(0, len(texts), 32)])
    return [int(p.argmax()) == LABEL_TO_ID[r["label"]] for p, r in zip(probs, rows)]


@dataclass
class RetrainResult:
    version: str
    champion: str
    added: int  # new rows in the flywheel set
    flywheel_rows: int  # rows the version learnt
    gate: Any  # GateReport
    fixed: dict[str, int] = field(default_factory=dict)  # on the flywheel rows: champion_right, challenger_right, n

    @property
    def generalisation(self) -> str:
        """One line: the gain on the rows it learnt next to the gain on phrasings it never saw."""
        f, g = self.fixed, self.gate.figures
        if g.get("unseen_gain") is None:
            return "unseen templates: not measured"
        return (f"rows it learnt {f['champion_right']}/{f['n']} -> {f['challenger_right']}/{f['n']}; unseen templates "
                f"(tests/fixtures/flywheel_unseen) {g['unseen_champion_accuracy']:.3f} -> {g['unseen_accuracy']:.3f}, "
                f"target intents {g['unseen_champion_target_accuracy']:.3f} -> {g['unseen_target_accuracy']:.3f} "
                f"(gain {g['unseen_gain']:+.3f})")


def retrain(
    labelled: Sequence[Path], *, build_dir: Path, repo: Path, registry: Registry, lifecycle_dir: Path,
    triton_url: str, spec: versions.VersionSpec | None = None, gate_overrides: Mapping[str, float] | None = None,
    gate_kwargs: Mapping[str, Any] | None = None, log: Any = print,
) -> RetrainResult:
    """Labelled rows -> flywheel set -> a new version from the champion -> loaded by Triton -> gated (recorded).
    Putting a passing version in shadow is the caller's step (``mangaassist retrain`` writes the rollout file)."""
    from model_repository.lifecycle.gate import TritonClassifier, gate_and_record
    from model_repository.lifecycle.serving import load
    from server.drift.labels import append_training

    rows = [row for path in labelled for row in read_labelled(path)]
    flywheel = Path(lifecycle_dir) / FLYWHEEL
    added = append_training(rows, flywheel)
    learnt = versions.read_jsonl(flywheel) if flywheel.is_file() else []
    if not learnt:
        raise ValueError("no labelled rows: label-export's tasks need annotations (Label Studio export) first")
    champion = registry.alias(versions.MODEL, CHAMPION) or "1"
    spec = replace(spec or versions.VersionSpec(), parent=champion, extra_train=str(flywheel),
                   note=f"retrain: {len(learnt)} flywheel rows ({added} new)")
    log(f"[retrain] {added} new labelled rows, {len(learnt)} in the flywheel set; training from champion {champion}")
    info = versions.new_version(spec, build_dir=build_dir, repo=repo, registry=registry, lifecycle_dir=lifecycle_dir)
    version = info.triton_version
    shutil.copy2(flywheel, Path(lifecycle_dir) / "models" / versions.MODEL / version / "flywheel.jsonl")
    load([triton_url], repo)
    log(f"[retrain] version {version} loaded by Triton at {triton_url}; gating against champion {champion}")
    report = gate_and_record(triton_url, version, registry=registry, data_dir=Path(build_dir) / "data", repo=repo,
                             champion=champion, overrides={**RETRAIN_CHECKS, **dict(gate_overrides or {})},
                             **dict(gate_kwargs or {}))
    clf = TritonClassifier(triton_url)
    before, after = flywheel_accuracy(clf, learnt, champion), flywheel_accuracy(clf, learnt, version)
    result = RetrainResult(version, champion, added, len(learnt), report,
                           fixed={"n": len(learnt), "champion_right": sum(before), "challenger_right": sum(after),
                                  "fixed": sum(a and not b for a, b in zip(after, before)),
                                  "broken": sum(b and not a for a, b in zip(after, before))})
    return result
