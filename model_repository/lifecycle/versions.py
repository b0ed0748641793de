"""New versions of a served model: train -> ONNX -> a new Triton version directory of the same model -> the
registry (lineage, offline metrics). Today the intent classifier (``intent_classifier_onnx``); the same steps
fit any head :func:`model_repository.export.append_head` knows.

A version is trained from a *parent* (the weights of an earlier Triton version, fine-tuned further) or from the
base encoder, on the build's intent data with its own seed, subset, step count -- or deliberately shuffled labels,
the worse challenger the gate must stop. ``layers`` keeps only the first N encoder layers (a smaller variant).

The repository: :func:`lay_out` copies the models the classifier needs out of a build (hard links, no copies of
the ONNX files); :func:`add_version` writes ``<repo>/intent_classifier_onnx/<N>/`` and rewrites that model's
``version_policy`` to serve every version directory (``specific``), while the ``intent_classifier`` ensemble's
step is pinned to the champion (its default ``-1`` would follow the newest, ungated version). Triton loads new
version directories at start-up, or on a repository load in ``--model-control-mode=explicit``.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_repository import export, spec
from contracts.models import CLASSIFIER_TOKENIZER, INTENT_CLASSIFIER, VERSIONED_CLASSIFIER
from model_repository.lifecycle.registry import CHAMPION, Registry, VersionInfo, git_commit, sha256_file, sha256_files
from model_repository.training.common import base_checkpoint, read_jsonl, seed_everything

PKG = Path(__file__).resolve().parents[1]
ROOT = PKG.parent
MODEL, TOKENIZER = VERSIONED_CLASSIFIER, CLASSIFIER_TOKENIZER  # the Triton model that holds the versions; its feeder
ENSEMBLE = INTENT_CLASSIFIER.name
MAX_LENGTH = 64  # what intent_tokenizer feeds the served model
CODE = [PKG / "lifecycle" / "versions.py", PKG / "training" / "intent.py", PKG / "training" / "common.py",
        PKG / "export.py", PKG / "backends" / "onnx_model.py"]


@dataclass(frozen=True)
class VersionSpec:
    """How a new version is trained. Small defaults: a fine-tune of the parent, seconds on two cores."""

    parent: str | None = "1"  # Triton version whose weights are fine-tuned; None = the base encoder
    seed: int = 7
    max_train: int | None = 512  # a random subset of the training split (None = all of it)
    max_steps: int = 30
    batch_size: int = 32
    lr: float = 2e-5
    shuffle_labels: bool = False  # the deliberately worse challenger
    layers: int | None = None  # keep the first N encoder layers (a smaller variant)
    quantize: bool = False  # serve the int8 dynamic-quantised graph instead of fp32
    #: the flywheel (``mangaassist retrain``): labelled production rows (JSONL text/label) learnt on top of a
    #: class-balanced replay of the training split (``max_train`` rows), ``extra_share`` of every batch; the
    #: replay rows learn the parent's own probabilities (distillation), so what the parent got right stays put
    extra_train: str | None = None
    extra_share: float = 0.25
    distill: bool = True
    train_top_layers: int | None = None  # only the top N encoder layers (+ the head) learn; the rest stay the parent's
    #: flywheel: every ``select_every`` steps the validation split (minus the flywheel's own rows) is scored; the
    #: version kept is the checkpoint that learnt most of the flywheel rows among those whose validation accuracy
    #: and per-class F1 stay within ``select_tolerance`` of the parent's -- the gate's criterion, on held-out data
    select_every: int = 10
    select_tolerance: float = 0.015
    note: str = ""


# ----------------------------------------------------------------------------------------- repository
def lay_out(build_dir: Path, dest: Path, *, instances: int = 1) -> Path:
    """A Triton repository with the classifier only (tokenizer, ONNX model, ensemble), version 1 from the build."""
    from model_repository.build import BuildConfig, Builder

    Builder(build_dir, BuildConfig()).assemble("cpu", dest, models=(TOKENIZER, MODEL, ENSEMBLE))
    cfg_path = dest / MODEL / "config.pbtxt"
    cfg = spec.parse_pbtxt(cfg_path.read_text())
    for group in cfg.instance_group:
        group.count = instances
    _write_config(cfg_path, cfg)
    return dest


def versions_in(repo: Path, model: str = MODEL) -> list[str]:
    return sorted((p.name for p in (repo / model).iterdir() if p.is_dir() and p.name.isdigit()), key=int)


def pin(repo: Path, *, champion: str, model: str = MODEL) -> None:
    """Serve every version directory of ``model``; the ensemble's step calls ``champion``."""
    cfg_path = repo / model / "config.pbtxt"
    cfg = spec.parse_pbtxt(cfg_path.read_text())
    cfg.version_policy.specific.versions[:] = [int(v) for v in versions_in(repo, model)]
    _write_config(cfg_path, cfg)
    ens_path = repo / ENSEMBLE / "config.pbtxt"
    if ens_path.is_file():
        ens = spec.parse_pbtxt(ens_path.read_text())
        for step in ens.ensemble_scheduling.step:
            if step.model_name == model:
                step.model_version = int(champion)
        _write_config(ens_path, ens)


def _write_config(path: Path, cfg: Any) -> None:
    from google.protobuf import text_format

    header = "# Lifecycle repository (model_repository/lifecycle/versions.py): versions pinned, do not edit.\n"
    path.write_text(header + text_format.MessageToString(cfg))


def add_version(repo: Path, onnx_file: Path, *, champion: str) -> str:
    """Next version directory of MODEL: model.onnx (hard link) + the python-backend model.py. Returns it."""
    version = str(max(map(int, versions_in(repo)), default=0) + 1)
    vdir = repo / MODEL / version
    vdir.mkdir(parents=True)
    try:
        (vdir / "model.onnx").hardlink_to(onnx_file)
    except OSError:
        shutil.copy2(onnx_file, vdir / "model.onnx")
    shutil.copy2(PKG / "backends" / "onnx_model.py", vdir / "model.py")
    pin(repo, champion=champion)
    return version


# ----------------------------------------------------------------------------------------- training
def _rows(path: Path) -> list[dict[str, Any]]:
    from server.retrieval.query import expand as classifier_input

    rows = read_jsonl(path)
    for r in rows:  # the classifier's input is the message + English glosses, as served
        r["text"] = classifier_input(r["text"])
    return rows


def _balanced(rows: list[dict[str, Any]], n: int, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` rows, as even across labels as the data allows (a replay that keeps every class in view)."""
    by_label: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_label.setdefault(r["label"], []).append(r)
    for group in by_label.values():
        rng.shuffle(group)
    out: list[dict[str, Any]] = []
    while len(out) < min(n, len(rows)):
        for group in by_label.values():
            if group and len(out) < n:
                out.append(group.pop())
    return out


def _label_balanced_epoch(rows: list[dict[str, Any]], rng: random.Random, at_least: int) -> list[int]:
    """Indices of ``rows`` drawn label by label (each label as often, its rows in turn): a flywheel queue that is
    mostly one intent must not teach the model that intent's prior."""
    by_label: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_label.setdefault(r["label"], []).append(i)
    per_label = max(max(map(len, by_label.values())), -(-at_least // len(by_label)))
    out = []
    for group in by_label.values():
        out += [group[k % len(group)] for k in range(per_label)]
    rng.shuffle(out)
    return out


class _CheckpointSelector:
    """Keeps the flywheel checkpoint that learnt most of the labelled rows without costing the parent's held-out
    accuracy: validation accuracy and every class's F1 within ``vspec.select_tolerance`` of the parent's."""

    def __init__(self, model: Any, tok: Any, data_dir: Path, extra: list[dict[str, Any]], vspec: VersionSpec) -> None:
        from server.intents import LABEL_TO_ID

        flywheel = {r["text"] for r in extra}
        held = [r for r in _rows(data_dir / "intents" / "validation.jsonl") if r["text"] not in flywheel]
        self.model, self.tok, self.tolerance = model, tok, vspec.select_tolerance
        self.texts, self.truth = [r["text"] for r in held], [LABEL_TO_ID[r["label"]] for r in held]
        self.extra_texts, self.extra_truth = [r["text"] for r in extra], [LABEL_TO_ID[r["label"]] for r in extra]
        self.parent = self._score()
        self.best: tuple[float, int] = (self.parent["flywheel"], 0)
        self.kept = self._state()  # until a checkpoint is safe and better: the parent's own weights
        self.kept_step = 0
        self.log: list[dict[str, Any]] = [{"step": 0, **{k: v for k, v in self.parent.items() if k != "f1"}}]

    def _score(self) -> dict[str, Any]:
        from model_repository.training.intent import classification_report, predict_torch

        report = classification_report(self.truth, predict_torch(self.model, self.tok, self.texts).argmax(1).tolist())
        learnt = predict_torch(self.model, self.tok, self.extra_texts).argmax(1)
        return {"accuracy": report["accuracy"], "f1": report["per_class_f1"],
                "flywheel": round(float(np.mean(learnt == np.array(self.extra_truth))), 4)}

    def consider(self, step: int) -> None:
        now = self._score()
        drop = max(self.parent["f1"][k] - now["f1"][k] for k in now["f1"])
        safe = self.parent["accuracy"] - now["accuracy"] <= self.tolerance and drop <= self.tolerance
        self.log.append({"step": step, "accuracy": now["accuracy"], "flywheel": now["flywheel"],
                         "max_class_drop": round(drop, 4), "safe": safe})
        if safe and (now["flywheel"], step) > self.best:
            self.best, self.kept_step = (now["flywheel"], step), step
            self.kept = self._state()

    def _state(self) -> dict[str, Any]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def restore(self) -> None:
        """The kept checkpoint into the model (step 0 = the parent: nothing safe was learnt; the report says so)."""
        self.model.load_state_dict(self.kept)


def train(vspec: VersionSpec, data_dir: Path, parent_hf: Path | None, out_hf: Path) -> dict[str, Any]:
    """Fine-tune ``parent_hf`` (or the base encoder) per ``vspec``; the HF model + tokenizer go to ``out_hf``."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from model_repository.training.intent import model_inputs, predict_torch
    from server.intents import INTENT_LABELS, LABEL_TO_ID

    seed_everything(vspec.seed)
    rng = random.Random(vspec.seed)
    rows = _rows(data_dir / "intents" / "train.jsonl")
    extra = _rows(Path(vspec.extra_train)) if vspec.extra_train else []
    if vspec.max_train:
        rows = _balanced(rows, vspec.max_train, rng) if extra else rng.sample(rows, min(vspec.max_train, len(rows)))
    labels = [LABEL_TO_ID[r["label"]] for r in rows]
    if vspec.shuffle_labels:
        rng.shuffle(labels)
    source = parent_hf or base_checkpoint()
    tok = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=len(INTENT_LABELS), id2label=dict(enumerate(INTENT_LABELS)), label2id=dict(LABEL_TO_ID)
    )
    if vspec.layers:
        encoder = model.base_model.encoder
        encoder.layer = encoder.layer[: vspec.layers]
        model.config.num_hidden_layers = vspec.layers

    if vspec.train_top_layers is not None:
        layers = model.base_model.encoder.layer
        for param in model.base_model.embeddings.parameters():
            param.requires_grad = False
        for layer in layers[: max(0, len(layers) - vspec.train_top_layers)]:
            for param in layer.parameters():
                param.requires_grad = False

    def encode(texts: list[str]) -> Any:
        return model_inputs(model, tok(texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt"))

    # targets: one-hot labels, or the parent's probabilities on replay rows (flywheel + distill)
    distilling = bool(extra) and vspec.distill and parent_hf is not None
    targets = torch.nn.functional.one_hot(torch.tensor(labels), len(INTENT_LABELS)).float()
    if distilling:
        targets = torch.from_numpy(predict_torch(model, tok, [r["text"] for r in rows], max_length=MAX_LENGTH))
    extra_targets = torch.nn.functional.one_hot(torch.tensor([LABEL_TO_ID[r["label"]] for r in extra], dtype=torch.long),
                                                len(INTENT_LABELS)).float() if extra else None
    n_extra = max(1, round(vspec.batch_size * vspec.extra_share)) if extra else 0
    n_replay = vspec.batch_size - n_extra
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=vspec.lr, weight_decay=0.01)
    # no smoothing when the replay learns the parent's own probabilities: smoothed, they would pull every
    # confident answer of the parent towards uncertainty (and some of them over a decision boundary)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.0 if distilling else 0.05)
    started, step, losses = time.perf_counter(), 0, []
    replay_order: list[int] = []
    extra_order: list[int] = []
    selector = _CheckpointSelector(model, tok, data_dir, extra, vspec) if extra and vspec.select_every else None
    model.train()
    while step < vspec.max_steps:
        if len(replay_order) < n_replay:
            replay_order += rng.sample(range(len(rows)), len(rows))
        idx, replay_order = replay_order[:n_replay], replay_order[n_replay:]
        texts, target = [rows[j]["text"] for j in idx], targets[idx]
        if n_extra:
            if len(extra_order) < n_extra:
                extra_order += _label_balanced_epoch(extra, rng, n_extra)
            eidx, extra_order = extra_order[:n_extra], extra_order[n_extra:]
            texts += [extra[j]["text"] for j in eidx]
            target = torch.cat([target, extra_targets[eidx]])
        loss = loss_fn(model(**encode(texts)).logits, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
        step += 1
        if selector is not None and (step % vspec.select_every == 0 or step == vspec.max_steps):
            selector.consider(step)
            model.train()
    model.eval()
    if selector is not None:
        selector.restore()
    model.save_pretrained(out_hf)
    tok.save_pretrained(out_hf)
    used = json.dumps([[r["text"], y] for r, y in zip(rows, labels)] + [[r["text"], r["label"]] for r in extra],
                      ensure_ascii=False)
    import hashlib

    return {
        "train_examples": len(rows),
        "flywheel_examples": len(extra),
        **({"checkpoints": selector.log, "kept_step": selector.kept_step} if selector is not None else {}),
        "steps": step,
        "train_seconds": round(time.perf_counter() - started, 1),
        "final_loss": round(float(np.mean(losses[-5:])), 4) if losses else None,
        "data_hash": hashlib.sha256(used.encode()).hexdigest()[:16],
        "layers": model.config.num_hidden_layers,
    }


def to_onnx(hf_dir: Path, out_dir: Path, *, quantize: bool = False) -> Path:
    """The served graph: optimum export + the softmax head (fp32), or its int8 dynamic quantisation."""
    from transformers import AutoConfig

    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / "model.fp32.onnx"
    export.optimum_export(hf_dir, fp32, export.TASK_OF["softmax"])
    export.append_head(fp32, "softmax")
    if not quantize:
        return fp32
    optimized, int8 = out_dir / "model.optimized.onnx", out_dir / "model.int8.onnx"
    export.optimize(fp32, optimized, AutoConfig.from_pretrained(hf_dir).model_type)
    export.quantize_int8(optimized, int8)
    optimized.unlink()
    return int8


def offline_metrics(onnx_file: Path, tokenizer_dir: Path, data_dir: Path) -> dict[str, Any]:
    """Accuracy / per-class F1 of the ONNX graph on the test split and the hand-written set (ONNX Runtime)."""
    from transformers import AutoTokenizer

    from model_repository.training.intent import classification_report
    from server.intents import LABEL_TO_ID

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    sess = export.session(onnx_file)
    out: dict[str, Any] = {}
    sets = {"test": data_dir / "intents" / "test.jsonl", "handwritten": ROOT / "tests" / "fixtures" / "intents_handwritten.jsonl"}
    for name, path in sets.items():
        rows = _rows(path)
        probs = export.run_session(sess, export.token_feeds(tok, [r["text"] for r in rows], max_length=MAX_LENGTH))
        report = classification_report([LABEL_TO_ID[r["label"]] for r in rows], probs.argmax(1).tolist())
        report.pop("confusion_matrix", None)
        out[name] = report
    return out


def flat_metrics(offline: dict[str, Any]) -> dict[str, float]:
    flat = {}
    for split, rep in offline.items():
        flat[f"{split}_accuracy"] = rep["accuracy"]
        flat[f"{split}_macro_f1"] = rep["macro_f1"]
        for label, f1 in rep["per_class_f1"].items():
            flat[f"{split}_f1_{label}"] = f1
    return flat


# ----------------------------------------------------------------------------------------- the entry points
def parent_hf_dir(build_dir: Path, lifecycle_dir: Path, parent: str | None) -> Path | None:
    if parent is None:
        return None
    if parent == "1":
        return build_dir / "models" / "intent_classifier" / "hf"
    return lifecycle_dir / "models" / MODEL / parent / "hf"


def register_baseline(build_dir: Path, repo: Path, registry: Registry) -> VersionInfo:
    """Version 1 (the build's classifier) into the registry as the champion, with the build's lineage."""
    existing = registry.version(MODEL, "1")
    if existing is not None:
        return existing
    report = json.loads((build_dir / "models" / "intent_classifier" / "manifest.json").read_text())["report"]
    offline = {k: {**report[k]} for k in ("test", "handwritten") if k in report}
    for rep in offline.values():
        rep.pop("confusion_matrix", None)
    lineage = {
        "data_hash": sha256_files((build_dir / "data" / "intents").glob("*.jsonl")),
        "code_hash": sha256_files(CODE),
        "parent": "",
        "onnx_sha256": sha256_file(repo / MODEL / "1" / "model.onnx"),
        "git_commit": git_commit(),
    }
    params = {"source": "python -m model_repository build", "checkpoint": report.get("checkpoint", ""),
              "epochs": report.get("epochs"), "train_examples": report.get("train_examples")}
    info = registry.log_version(MODEL, "1", params=params, metrics=flat_metrics(offline), lineage=lineage,
                                artefacts={"offline_metrics": offline})
    registry.set_alias(MODEL, CHAMPION, "1")
    return registry.version(MODEL, "1") or info


def new_version(
    vspec: VersionSpec, *, build_dir: Path, repo: Path, registry: Registry, lifecycle_dir: Path | None = None
) -> VersionInfo:
    """Train per ``vspec``, write the next version directory of MODEL into ``repo``, register it (lineage,
    params, offline metrics, the training report) and mark it the challenger. Returns the registry record."""
    lifecycle_dir = Path(lifecycle_dir or registry.dir)
    champion = registry.alias(MODEL, CHAMPION) or "1"
    parent_hf = parent_hf_dir(build_dir, lifecycle_dir, vspec.parent)
    if parent_hf is not None and not parent_hf.is_dir():
        raise FileNotFoundError(f"parent version {vspec.parent}: no weights at {parent_hf}")
    staging = lifecycle_dir / "models" / MODEL / f"staging-{int(time.time() * 1000)}"
    staging.mkdir(parents=True)
    print(f"[lifecycle] training {MODEL} from parent {vspec.parent or 'base encoder'}: {asdict(vspec)}", flush=True)
    training = train(vspec, build_dir / "data", parent_hf, staging / "hf")
    onnx_file = to_onnx(staging / "hf", staging / "onnx", quantize=vspec.quantize)
    offline = offline_metrics(onnx_file, staging / "hf", build_dir / "data")
    version = add_version(repo, onnx_file, champion=champion)
    final = staging.parent / version
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    lineage = {
        "data_hash": training["data_hash"],
        "code_hash": sha256_files(CODE),
        "parent": vspec.parent or "",
        "onnx_sha256": sha256_file(repo / MODEL / version / "model.onnx"),
        "git_commit": git_commit(),
    }
    info = registry.log_version(
        MODEL, version, params={**asdict(vspec), "champion_at_training": champion}, metrics=flat_metrics(offline),
        lineage=lineage, artefacts={"training": training, "offline_metrics": offline},
        source=(final / "hf").as_uri(),
    )
    registry.set_alias(MODEL, "challenger", version)
    print(f"[lifecycle] {MODEL} version {version}: test accuracy {offline['test']['accuracy']}, "
          f"handwritten {offline['handwritten']['accuracy']} ({training['train_seconds']} s training)", flush=True)
    return registry.version(MODEL, version) or info
