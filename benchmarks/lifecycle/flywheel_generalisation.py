"""Does the flywheel's retrain generalise? The champion against the flywheel's retrained version, on the frozen
unseen-template set (tests/fixtures/flywheel_unseen: hand-written slang, typos, fragments, Japanese script and
romaji in phrasings neither the retrain's data nor the training generator uses) next to the figure on the
flywheel's own templates (benchmarks/drift/simulate.py ``SLANG``, about series no labeller saw).

The flywheel is run as tests/e2e/test_flywheel.py runs it, minus Triton (same seed, same week, same label queue):
a week of 60 slang messages about half the catalogue's series and 120 validation-split messages, classified by the
build's champion (its served ONNX file, message + glosses as served), written to a SQLite traffic log with a
thumbs-down on every other wrong answer, ``drift label-export --below 0.8``, every task labelled with the intent
the message was written for, and the retrain's own steps (``append_training`` + ``versions.new_version`` from the
champion with the flywheel set, at ``mangaassist retrain``'s default VersionSpec; the checkpoint selector sees the
validation split only, never this set).

Also a *memorising* control: the champion plus an exact-string lookup of every row the flywheel learnt (what a
retrain that only memorised its rows would score). It is perfect on the rows it learnt and must show no gain
elsewhere -- the figure the gate reads (``unseen_gain``) is the one that tells the two apart.

    .venv/bin/python -m benchmarks.lifecycle.flywheel_generalisation [--out benchmarks/results/flywheel_generalisation]

Writes ``<out>/report.json``; one fine-tune at the retrain's defaults + ONNX export: 553 s on two cores shared at
load 8-10 (the fine-tune alone 442 s).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from benchmarks import common
from model_repository.lifecycle.generalisation import (TARGET_INTENTS, UNSEEN_SET, figures as unseen_figures,
                                                       load_unseen)

BUILD = Path(os.environ.get("MANGAASSIST_BUILD_DIR", common.ROOT / ".build"))
OUT = common.DEFAULT_RESULTS_DIR / "flywheel_generalisation"
WEEK_SEED, FRESH_SEED = 29, 31  # tests/e2e/test_flywheel.py's


def slang(rng: random.Random, series: Sequence[str], n: int) -> list[dict[str, str]]:
    """Messages from the flywheel's own templates (the drift simulation's new slang), as the e2e test draws them."""
    from benchmarks.drift.simulate import SLANG

    rows = []
    for _ in range(n):
        template, label = rng.choice(SLANG)
        rows.append({"text": template.format(s=rng.choice(series), n=rng.randint(1, 12)), "label": label})
    return rows


class OnnxVersions:
    """``probs(texts, version)`` on a version's ONNX file (message + glosses, the served input), ONNX Runtime."""

    def __init__(self, repo: Path, tokenizer_dir: Path) -> None:
        from transformers import AutoTokenizer

        from model_repository import export

        self.url = f"onnx:{repo}"
        self.repo, self.tok, self.export, self._sessions = repo, AutoTokenizer.from_pretrained(tokenizer_dir), export, {}

    def probs(self, texts: list[str], version: str) -> np.ndarray:
        from model_repository.lifecycle.versions import MAX_LENGTH, MODEL
        from server.retrieval.query import expand

        if version not in self._sessions:
            self._sessions[version] = self.export.session(self.repo / MODEL / version / "model.onnx")
        feeds = self.export.token_feeds(self.tok, [expand(t) for t in texts], max_length=MAX_LENGTH)
        return self.export.run_session(self._sessions[version], feeds)


class Memoriser:
    """The champion, except on the exact strings the flywheel learnt, where it answers their label: a retrain that
    memorised its rows and learnt nothing else."""

    def __init__(self, base: Any, champion: str, learnt: Sequence[Mapping[str, str]]) -> None:
        from server.intents import LABEL_TO_ID

        self.base, self.champion, self.url = base, champion, f"memoriser:{base.url}"
        self.table = {r["text"]: LABEL_TO_ID[r["label"]] for r in learnt}

    def probs(self, texts: list[str], version: str) -> np.ndarray:
        out = self.base.probs(texts, self.champion).copy()
        for i, text in enumerate(texts):
            if text in self.table:
                out[i] = 0.0
                out[i, self.table[text]] = 1.0
        return out


def accuracy(probs_fn: Callable[[list[str]], np.ndarray], rows: Sequence[Mapping[str, str]]) -> float:
    from server.intents import LABEL_TO_ID

    if not rows:
        return float("nan")
    p = probs_fn([r["text"] for r in rows])
    return round(float(np.mean([int(x.argmax()) == LABEL_TO_ID[r["label"]] for x, r in zip(p, rows)])), 4)


def week_and_queue(clf: Any, champion: str, root: Path) -> tuple[list[dict[str, str]], list[str], list[dict[str, str]]]:
    """(queue of labelled rows, the unseen half of the series, the week's slang rows): the e2e flywheel's recipe."""
    from model_repository.lifecycle import versions
    from model_repository.lifecycle.drift import main as drift_main
    from server.intents import INTENT_LABELS
    from server.traffic.record import TrafficRecord
    from server.traffic.store import SQLiteTrafficStore

    rng = random.Random(WEEK_SEED)
    series = [json.loads(line)["series"] for line in (BUILD / "data" / "series.jsonl").read_text().splitlines()
              if line.strip()]
    rng.shuffle(series)
    seen_series, unseen_series = series[: len(series) // 2], series[len(series) // 2 :]
    ordinary = rng.sample(versions.read_jsonl(BUILD / "data" / "intents" / "validation.jsonl"), 120)
    slang_rows = slang(rng, seen_series, 60)
    week = slang_rows + [{"text": r["text"], "label": r["label"]} for r in ordinary]
    rng.shuffle(week)
    truth = {r["text"]: r["label"] for r in week}
    probs = clf.probs([r["text"] for r in week], champion)
    records = []
    for i, (row, p) in enumerate(zip(week, probs)):
        intent = INTENT_LABELS[int(p.argmax())]
        records.append(TrafficRecord(
            ts=1_790_000_000.0 + i, request_id=f"req-{i}", model_versions={"intent_classifier": champion},
            intent=intent, confidence=float(p.max()), message=row["text"], tier="template",
            feedback="thumbs_down" if intent != row["label"] and i % 2 == 0 else ""))
    db = root / "traffic.db"
    store = SQLiteTrafficStore(str(db))
    store.write(records)
    store.close()
    tasks_path = root / "tasks.json"
    assert drift_main(["label-export", "--sqlite", str(db), "--out", str(tasks_path), "--below", "0.8",
                       "--feedback-db", ""]) == 0
    queue = [{"text": t["data"]["text"], "label": truth[t["data"]["text"]], "source": "flywheel"}
             for t in json.loads(tasks_path.read_text())]
    return queue, unseen_series, slang_rows


def run(out: Path) -> dict[str, Any]:
    from model_repository.lifecycle import cli as lifecycle_cli
    from model_repository.lifecycle import versions
    from model_repository.lifecycle.flywheel import FLYWHEEL
    from model_repository.lifecycle.registry import Registry
    from server.drift.labels import append_training

    started = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="flywheel-gen-") as tmp:
        root = Path(tmp)
        manifest = BUILD / "models" / "intent_classifier" / "manifest.json"
        if not manifest.is_file():
            raise SystemExit(f"the flywheel generalisation benchmark needs the built classifier ({manifest})")
        repo, life = root / "triton", root / "life"  # the classifier alone, version 1 (the build's) the champion
        versions.lay_out(BUILD, repo)
        registry = Registry(life)
        versions.register_baseline(BUILD, repo, registry)
        clf = OnnxVersions(repo, BUILD / "models" / "intent_classifier" / "hf")
        queue, unseen_series, slang_week = week_and_queue(clf, "1", root)
        own_texts = {r["text"] for r in slang_week}
        flywheel = life / FLYWHEEL
        append_training(queue, flywheel)
        shipped = lifecycle_cli.retrain_spec(lifecycle_cli.parser().parse_args(["retrain", "-"]))  # retrain's defaults
        spec = replace(shipped, parent="1", extra_train=str(flywheel),
                       note=f"flywheel generalisation benchmark: {len(queue)} rows")
        info = versions.new_version(spec, build_dir=BUILD, repo=repo, registry=registry, lifecycle_dir=life)
        retrained = info.triton_version
        memoriser = Memoriser(clf, "1", queue)
        own_fresh = slang(random.Random(FRESH_SEED), unseen_series, 80)  # the e2e's "series no labeller saw"
        unseen = load_unseen()
        models: dict[str, Callable[[list[str]], np.ndarray]] = {
            "champion": lambda t: clf.probs(t, "1"),
            "retrained": lambda t: clf.probs(t, retrained),
            "memoriser": lambda t: memoriser.probs(t, "mem"),
        }
        table: dict[str, Any] = {}
        for name, fn in models.items():
            table[name] = {
                "flywheel_rows_learnt": accuracy(fn, queue),
                "own_templates_fresh_series": accuracy(fn, own_fresh),
                "unseen_templates": unseen_figures(fn, unseen),
            }
        test = versions.read_jsonl(BUILD / "data" / "intents" / "test.jsonl")
        test_accuracy = {"champion": accuracy(models["champion"], test), "retrained": accuracy(models["retrained"], test)}
    report = {
        "command": "python -m benchmarks.lifecycle.flywheel_generalisation",
        "unseen_set": str(UNSEEN_SET.relative_to(common.ROOT)),
        "unseen_set_sha256": __import__("hashlib").sha256(UNSEEN_SET.read_bytes()).hexdigest(),
        "unseen_rows": len(unseen), "target_intents": list(TARGET_INTENTS),
        "queue_rows": len(queue), "queue_slang_rows": sum(r["text"] in own_texts for r in queue),
        "own_fresh_rows": len(own_fresh),
        "retrained_version": retrained, "version_spec": asdict(spec),
        "models": table,
        "gains": {name: {k: _gain(table[name], table["champion"], k) for k in
                         ("flywheel_rows_learnt", "own_templates_fresh_series", "unseen_accuracy",
                          "unseen_target_accuracy")} for name in ("retrained", "memoriser")},
        "test_split_accuracy": test_accuracy,
        "seconds": round(time.perf_counter() - started, 1),
        "loadavg_before": [round(x, 2) for x in load_before], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


def _gain(model: Mapping[str, Any], champion: Mapping[str, Any], key: str) -> float:
    def get(m: Mapping[str, Any]) -> float:
        if key in m:
            return m[key]
        return m["unseen_templates"]["accuracy" if key == "unseen_accuracy" else "target_accuracy"]

    return round(get(model) - get(champion), 4)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lifecycle.flywheel_generalisation", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    report = run(args.out)
    for name, row in report["models"].items():
        u = row["unseen_templates"]
        print(f"{name:10s} learnt rows {row['flywheel_rows_learnt']:.3f}  own templates (fresh series) "
              f"{row['own_templates_fresh_series']:.3f}  unseen templates {u['accuracy']:.3f} "
              f"(target intents {u['target_accuracy']:.3f}; by kind {u['by_kind']})")
    print(json.dumps(report["gains"], indent=1))
    print(f"-> {args.out / 'report.json'} ({report['seconds']} s, load {report['loadavg_before']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
