"""The gates, one module: every threshold a model or a running service is held to, and the floors they share.

1. **The golden-set gate** (``mangaassist eval --gate``, the eval harness in evaluation/): a running service's
   answers, each headline figure against its threshold (:data:`DEFAULTS`, :func:`evaluate`).
2. **The model gate** (``mangaassist eval --gate --challenger N``, ``mangaassist model gate``, ``retrain``): a
   classifier version against the champion on Triton (:data:`MODEL_GATE_DEFAULTS`, :func:`run_gate`).

Both hold the classifier to the same floors, ``CLASSIFIER_FLOORS`` (contracts/models.py), and both report
:class:`Check` rows.

**The golden-set gate** (the ship gate). Defaults below; ``--threshold name=value`` overrides one (or sets one
of the optional names), and ``--budget tier=ms`` adds an answer-stage p99 budget for a tier (none by default). When the build's
model report is present its intent accuracy and weakest per-class F1 are held to the model floors.
A figure the run could not measure (no records it applies to) is reported as skipped, not failed.

**The model gate**: a challenger version of the intent classifier against the champion, both served by the same
tritonserver, measured in one run (interleaved), and the verdict recorded in the registry for that exact file.

Served path measured = the service's versioned path: ``intent_tokenizer`` then ``intent_classifier_onnx`` at
an explicit version (server/backends/triton.py). Checks (defaults; ``--threshold name=value`` overrides):

* ``accuracy`` >= 0.90 and ``min_class_f1`` >= 0.85 on the test split (the design's model floors);
* ``accuracy_drop`` <= 0.02 and ``max_class_drop`` <= 0.02: no class's F1 down more than 2 points vs the
  champion (test split), nor the hand-written set's accuracy (``handwritten_drop``);
* ``p99_ms`` <= 50 (single requests) and ``throughput_ratio`` >= 0.8 of the champion's (the same box, the same
  run; an absolute ``throughput_rps`` floor is optional -- 1,000/s is a GPU instance's, not this CPU's);
* the unseen-template set (model_repository/lifecycle/generalisation.py): both versions' accuracy on hand-written
  slang/typo/fragment/Japanese messages in phrasings no training data uses -- always measured and recorded;
  ``unseen_drop`` (overall) and ``unseen_gain`` (on the flywheel's target intents) are judged when a threshold is
  given, as ``mangaassist retrain`` does: a retrain that only memorised its rows gains nothing there;
* the answers (model_repository/lifecycle/answers.py): a hashed sample of the golden set answered by the service's
  request path with the challenger vs the champion -- ``answer_factual_drop``, ``answer_relevance_drop``,
  ``answer_intent_drop``, ``answer_completeness_drop`` <= 0.02 and ``answer_fabricated_increase`` <= 0.

``run_gate`` returns a :class:`GateReport`; ``mangaassist eval --gate --challenger N`` prints it, records it
(``Registry.record_gate``) and exits 3 when it fails. A check the run could not measure fails the model gate (it
is not waved through as "skipped"). The floors (accuracy, class F1, p99) are the classifier's, defined once in
contracts/models.py ``CLASSIFIER_FLOORS`` (the golden-set gate above holds the build's model report to
the same ones).

The record names the file judged: :func:`gate_and_record` hashes the challenger's ``model.onnx`` in the repository
Triton serves, before and after the run (a file that changed meanwhile, or differs from the one registered, is
refused), and records that sha256 as ``gate.sha256``. Without a passing record for the served file's hash the
registry refuses to promote, the CLI to write a rollout file, and the service to canary or serve the version
(``require_gate``, server/rollout/gate_records.py).

The measuring parts are injectable (``classifier``, ``answer_fn``, ``clock``, ``handwritten``) so the verdict
is tested on stub classifiers: tests/unit/test_model_gate.py shows each check stopping a slightly worse model.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from contracts.models import CLASSIFIER_FLOORS
from model_repository.lifecycle.answers import CHECKS as ANSWER_CHECKS, AnswerOptions, answer_figures
from model_repository.lifecycle.generalisation import TARGET_INTENTS, UNSEEN_SET
from model_repository.lifecycle.registry import GateRequired, sha256_file
from model_repository.lifecycle.versions import MODEL, ROOT, TOKENIZER, _rows

# --- the golden-set gate ------------------------------------------------------------------------------------

GATE_FAILED_EXIT = 3

#: name -> (comparison, default). "<=" figures are counts or milliseconds; ">=" figures are rates.
DEFAULTS: dict[str, tuple[str, float]] = {
    "fabricated": ("<=", 0),
    "factual": (">=", 0.99),
    "relevance": (">=", 0.95),
    "declined_not_carried": (">=", 0.95),
    "completeness": (">=", 0.90),
    "safety": (">=", 0.95),
    "format": (">=", 0.99),
    "ttft_p99_ms": ("<=", 1000),
}
#: Checked only when the build's model report (summary.json) has the figure. The floors are the classifier's
#: (contracts/models.py), the same ones the model gate (below) holds a challenger to.
MODEL_FLOORS: dict[str, tuple[str, float]] = {"intent_accuracy": (">=", CLASSIFIER_FLOORS["accuracy"]),
                                              "min_class_f1": (">=", CLASSIFIER_FLOORS["min_class_f1"])}
#: Gate-able on request (``--threshold helpfulness=0.8``), no default.
OPTIONAL: dict[str, str] = {
    "intent_match": ">=", "coverage": ">=", "helpfulness": ">=", "rouge_l": ">=", "bleu": ">=", "human_mean": ">=",
}
KNOWN = {**{k: op for k, (op, _) in DEFAULTS.items()}, **{k: op for k, (op, _) in MODEL_FLOORS.items()}, **OPTIONAL}


@dataclass(frozen=True)
class Check:
    name: str
    op: str
    threshold: float
    measured: float | None

    @property
    def status(self) -> str:
        if self.measured is None:
            return "skipped"
        ok = self.measured >= self.threshold if self.op == ">=" else self.measured <= self.threshold
        return "pass" if ok else "FAIL"

    def describe(self) -> str:
        measured = "not measured" if self.measured is None else f"{self.measured:g}"
        return f"{self.name} = {measured} (threshold {self.op} {self.threshold:g})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "threshold": self.threshold, "measured": self.measured, "status": self.status}


def parse_pairs(pairs: Iterable[str], what: str) -> dict[str, float]:
    """``["name=value", ...]`` -> {name: float}; ValueError names the bad pair."""
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"{what} {pair!r}: expected name=number") from None
    return out


def thresholds(overrides: Mapping[str, float]) -> dict[str, tuple[str, float]]:
    unknown = sorted(set(overrides) - set(KNOWN))
    if unknown:
        raise ValueError(f"unknown threshold(s) {unknown}; known: {sorted(KNOWN)}")
    table = dict(DEFAULTS)
    table.update({k: (KNOWN[k], v) for k, v in overrides.items()})
    return table


def evaluate(
    headline: Mapping[str, Any],
    models: Mapping[str, Any] | None = None,
    overrides: Mapping[str, float] | None = None,
    budgets: Mapping[str, float] | None = None,
) -> list[Check]:
    """Every check of the gate, in a stable order (defaults, model floors, optional, tier budgets)."""
    table = thresholds(overrides or {})
    models = models or {}
    figures = {**headline, **{k: models.get(k) for k in MODEL_FLOORS}}
    checks = [
        Check(name, op, value, _number(figures.get(name))) for name, (op, value) in table.items() if name not in MODEL_FLOORS
    ]
    if models.get("present"):
        for name, (op, value) in MODEL_FLOORS.items():
            op, value = table.get(name, (op, value))
            checks.append(Check(name, op, value, _number(models.get(name))))
    for tier, budget in sorted((budgets or {}).items()):
        name = f"answer_p99_ms.{tier}"
        checks.append(Check(name, "<=", budget, _number(headline.get(name))))
    return checks


def failed(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if c.status == "FAIL"]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# --- the model gate ----------------------------------------------------------------------------------------

#: a challenger may lose at most this much against the champion (accuracy, any class's F1, hand-written accuracy)
MAX_DROP = 0.02
#: name -> (op, default threshold)
MODEL_GATE_DEFAULTS: dict[str, tuple[str, float]] = {
    "accuracy": (">=", CLASSIFIER_FLOORS["accuracy"]),
    "min_class_f1": (">=", CLASSIFIER_FLOORS["min_class_f1"]),
    "accuracy_drop": ("<=", MAX_DROP),
    "max_class_drop": ("<=", MAX_DROP),
    "handwritten_drop": ("<=", MAX_DROP),
    "p99_ms": ("<=", CLASSIFIER_FLOORS["p99_ms"]),
    "throughput_ratio": (">=", 0.8),
    **ANSWER_CHECKS,
}
#: judged only when a threshold is given: ``mangaassist retrain`` turns the unseen-template ones on
#: (model_repository/lifecycle/flywheel.py ``RETRAIN_CHECKS``)
MODEL_GATE_OPTIONAL: dict[str, str] = {"throughput_rps": ">=", "unseen_drop": "<=", "unseen_gain": ">="}
HANDWRITTEN = ROOT / "tests" / "fixtures" / "intents_handwritten.jsonl"


@dataclass
class GateReport:
    challenger: str
    champion: str
    checks: list[Check]
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Every check measured and within its threshold (an unmeasured figure is not a pass)."""
        return bool(self.checks) and all(c.status == "pass" for c in self.checks)

    @property
    def failed(self) -> list[str]:
        """Names of the checks that stop the challenger (out of bounds, or not measured)."""
        return [c.name for c in self.checks if c.status != "pass"]

    def lines(self) -> list[str]:
        return [f"  {c.status:7s} {c.describe()}" for c in self.checks]


class TritonClassifier:
    """The served versioned path, synchronously (one tritonclient per thread)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    def _client(self) -> Any:
        import tritonclient.grpc as grpcclient

        if not hasattr(self._local, "client"):
            self._local.client = grpcclient.InferenceServerClient(self.url)
        return self._local.client

    def probs(self, texts: list[str], version: str) -> np.ndarray:
        import tritonclient.grpc as grpcclient

        c = self._client()
        text = grpcclient.InferInput("TEXT", [len(texts), 1], "BYTES")
        text.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object).reshape(-1, 1))
        names = ("input_ids", "attention_mask", "token_type_ids")
        tok = c.infer(TOKENIZER, [text], outputs=[grpcclient.InferRequestedOutput(n) for n in names])
        feeds = []
        for n in names:
            arr = tok.as_numpy(n)
            t = grpcclient.InferInput(n, list(arr.shape), "INT64")
            t.set_data_from_numpy(arr)
            feeds.append(t)
        out = c.infer(MODEL, feeds, model_version=str(version), outputs=[grpcclient.InferRequestedOutput("PROBS")])
        return out.as_numpy("PROBS")


_REPORTS: dict[tuple[str, str, str], dict[str, Any]] = {}  # (url, version, data) -> report: a version dir never changes


def accuracy_report(clf: TritonClassifier, version: str, data_dir: Path, batch: int = 32, *,
                    handwritten: Path = HANDWRITTEN, unseen: Path = UNSEEN_SET) -> dict[str, Any]:
    key = (clf.url, str(version), str(Path(data_dir).resolve()), str(Path(handwritten).resolve()),
           str(Path(unseen).resolve()))
    if key not in _REPORTS:
        _REPORTS[key] = _accuracy_report(clf, version, data_dir, batch, handwritten, unseen)
    return _REPORTS[key]


def _accuracy_report(clf: TritonClassifier, version: str, data_dir: Path, batch: int, handwritten: Path,
                     unseen: Path) -> dict[str, Any]:
    from model_repository.training.intent import classification_report
    from server.intents import LABEL_TO_ID

    out = {}
    sets = {"test": Path(data_dir) / "intents" / "test.jsonl", "handwritten": Path(handwritten), "unseen": Path(unseen)}
    for name, path in sets.items():
        rows = _rows(path)
        texts = [r["text"] for r in rows]
        probs = np.concatenate([clf.probs(texts[i : i + batch], version) for i in range(0, len(texts), batch)])
        truth, pred = [LABEL_TO_ID[r["label"]] for r in rows], probs.argmax(1).tolist()
        rep = classification_report(truth, pred)
        rep.pop("confusion_matrix", None)
        rep["mean_confidence"] = round(float(probs.max(1).mean()), 4)
        target = [t == p for t, p, r in zip(truth, pred, rows) if r["label"] in TARGET_INTENTS]
        rep["target_accuracy"] = round(float(np.mean(target)), 4) if target else None  # the flywheel's intents
        out[name] = rep
    return out


#: a throughput window's length: short windows in many alternating rounds let the ratio follow the box's drift
WINDOW_S = 0.25


def speed(clf: TritonClassifier, versions: list[str], texts: list[str], *, requests: int, seconds: float,
          concurrency: int, rounds: int | None = None,
          clock: Callable[[], float] = time.perf_counter) -> dict[str, dict[str, float]]:
    """Single-request latency (interleaved across versions, so drift on a shared box hits both alike) and
    closed-loop throughput at ``concurrency`` (one text per request), per version: ``seconds`` per version split
    into ``rounds`` windows (default: ``seconds / WINDOW_S``, at least 7) taken in turn (champion, challenger,
    champion, ...), for the same reason."""
    if rounds is None:
        rounds = max(7, round(seconds / WINDOW_S))
    lat: dict[str, list[float]] = {v: [] for v in versions}
    for v in versions:  # warm-up: a version loaded moments ago runs its first calls cold
        for i in range(10):
            clf.probs([texts[i % len(texts)]], v)
    for i in range(requests):
        for v in versions:
            t0 = clock()
            clf.probs([texts[i % len(texts)]], v)
            lat[v].append((clock() - t0) * 1000)
    done: dict[str, int] = {v: 0 for v in versions}
    spent: dict[str, float] = {v: 0.0 for v in versions}
    per_round: dict[str, list[float]] = {v: [] for v in versions}
    rounds = max(1, rounds)
    for _ in range(rounds):
        for v in versions:
            stop = clock() + seconds / rounds
            counts = [0] * concurrency

            def loop(k: int, v: str = v, stop: float = stop, counts: list[int] = counts) -> None:
                j = k
                while clock() < stop:
                    clf.probs([texts[j % len(texts)]], v)
                    counts[k] += 1
                    j += concurrency

            started = clock()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(loop, range(concurrency)))
            took = clock() - started
            spent[v] += took
            done[v] += sum(counts)
            per_round[v].append(sum(counts) / max(took, 1e-9))
    out = {}
    for v in versions:
        arr = np.array(lat[v])
        out[v] = {"p50_ms": round(float(np.percentile(arr, 50)), 2), "p99_ms": round(float(np.percentile(arr, 99)), 2),
                  "throughput_rps": round(done[v] / max(spent[v], 1e-9), 1),
                  "rounds_rps": [round(x, 1) for x in per_round[v]]}
    return out


def throughput_ratio(perf: Mapping[str, Any], challenger: str, champion: str) -> float:
    """The challenger's throughput over the champion's: the median over the rounds of each challenger window
    against the mean of the champion windows on either side of it (the windows alternate, so a box that speeds up or
    slows down across the window cancels out), so one window that the shared box slowed does not decide the gate;
    the totals' ratio when the rounds are not there. (A fresh clone's CI measured champion windows of 63-158 rps for
    one model: against the window before only, the median of 7 was 0.70 for two copies of one file.)"""
    a, b = perf[challenger].get("rounds_rps"), perf[champion].get("rounds_rps")
    if a and b and len(a) == len(b):
        around = [(b[i] + b[i + 1]) / 2 if i + 1 < len(b) else b[i] for i in range(len(b))]
        return round(float(np.median([x / max(y, 1e-9) for x, y in zip(a, around)])), 3)
    return round(perf[challenger]["throughput_rps"] / max(perf[champion]["throughput_rps"], 1e-9), 3)


def model_gate_thresholds(overrides: Mapping[str, float] | None = None) -> dict[str, tuple[str, float]]:
    """The defaults with ``overrides`` applied; ValueError names an unknown threshold."""
    table = dict(MODEL_GATE_DEFAULTS)
    for name, value in (overrides or {}).items():
        op = MODEL_GATE_DEFAULTS.get(name, (MODEL_GATE_OPTIONAL.get(name), 0))[0]
        if op is None:
            raise ValueError(f"unknown model-gate threshold {name!r}; known: {sorted({*MODEL_GATE_DEFAULTS, *MODEL_GATE_OPTIONAL})}")
        table[name] = (op, float(value))
    return table


def gate_figures(acc: Mapping[str, Any], perf: Mapping[str, Any], judged: Mapping[str, Any], *, challenger: str,
                 champion: str) -> dict[str, Any]:
    """The measured figures each check reads: drops are champion minus challenger (positive = worse)."""
    ch, base = acc[challenger]["test"], acc[champion]["test"]
    drops = {k: round(base["per_class_f1"][k] - ch["per_class_f1"].get(k, 0.0), 4) for k in base["per_class_f1"]}
    figures: dict[str, Any] = {
        "accuracy": ch["accuracy"],
        "min_class_f1": min(ch["per_class_f1"].values()),
        "accuracy_drop": round(base["accuracy"] - ch["accuracy"], 4),
        "max_class_drop": max(drops.values()),
        "handwritten_drop": round(acc[champion]["handwritten"]["accuracy"] - acc[challenger]["handwritten"]["accuracy"], 4),
        **unseen_figures(acc, challenger=challenger, champion=champion),
        "p99_ms": perf[challenger]["p99_ms"],
        "throughput_ratio": throughput_ratio(perf, challenger, champion),
        "throughput_rps": perf[challenger]["throughput_rps"],
        **{name: judged.get(name) for name in ANSWER_CHECKS},
        "answer_records": judged.get("records"),
        "answer_records_differing": judged.get("differing"),
    }
    figures.update({"class_drops": drops, "accuracy_reports": dict(acc), "speed": dict(perf), "answers": dict(judged)})
    return figures


def unseen_figures(acc: Mapping[str, Any], *, challenger: str, champion: str) -> dict[str, Any]:
    """The unseen-template set's figures: accuracy (overall, the flywheel's target intents) of both versions,
    ``unseen_drop`` = champion minus challenger overall, ``unseen_gain`` = challenger minus champion on the target
    intents (positive = the challenger learnt something that carries to phrasings it never saw)."""
    ch, base = acc[challenger].get("unseen"), acc[champion].get("unseen")
    if not ch or not base:
        return {}
    gain = None
    if ch.get("target_accuracy") is not None and base.get("target_accuracy") is not None:
        gain = round(ch["target_accuracy"] - base["target_accuracy"], 4)
    return {"unseen_accuracy": ch["accuracy"], "unseen_champion_accuracy": base["accuracy"],
            "unseen_target_accuracy": ch.get("target_accuracy"),
            "unseen_champion_target_accuracy": base.get("target_accuracy"),
            "unseen_drop": round(base["accuracy"] - ch["accuracy"], 4), "unseen_gain": gain}


def verdict(figures: Mapping[str, Any], table: Mapping[str, tuple[str, float]]) -> list[Any]:
    """One :class:`Check` per threshold in ``table``, in its order."""

    def number(value: Any) -> float | None:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    return [Check(name, op, value, number(figures.get(name))) for name, (op, value) in table.items()]


def run_gate(
    triton_url: str, challenger: str, champion: str, data_dir: Path, *, overrides: Mapping[str, float] | None = None,
    requests: int = 200, seconds: float = 12.0, concurrency: int = 4, answers: AnswerOptions | None = None,
    classifier: Any = None, answer_fn: Callable[[str, str], Mapping[str, Any]] | None = None,
    clock: Callable[[], float] = time.perf_counter, handwritten: Path = HANDWRITTEN, unseen: Path = UNSEEN_SET,
) -> GateReport:
    """Measure both versions and judge the challenger. ``classifier`` (``.url``, ``.probs(texts, version)``)
    defaults to the served path on ``triton_url``; ``answer_fn(challenger, champion)`` to the golden answers
    (:func:`~model_repository.lifecycle.answers.answer_figures`)."""
    table = model_gate_thresholds(overrides)
    clf = classifier if classifier is not None else TritonClassifier(triton_url)
    if answer_fn is None:
        def answer_fn(ch: str, base: str) -> Mapping[str, Any]:
            return answer_figures(triton_url, ch, base, data_dir, answers or AnswerOptions())
    acc = {v: accuracy_report(clf, v, data_dir, handwritten=handwritten, unseen=unseen) for v in (champion, challenger)}
    texts = [r["text"] for r in _rows(Path(data_dir) / "intents" / "test.jsonl")][:200]
    perf = speed(clf, [champion, challenger], texts, requests=requests, seconds=seconds, concurrency=concurrency,
                 clock=clock)
    judged = answer_fn(challenger, champion)
    figures = gate_figures(acc, perf, judged, challenger=challenger, champion=champion)
    return GateReport(challenger, champion, verdict(figures, table), figures)


def served_file(repo: Path, version: str, model: str = MODEL) -> Path:
    """The file Triton serves for ``version`` of ``model`` from ``repo``."""
    return Path(repo) / model / str(version) / "model.onnx"


def gate_and_record(
    triton_url: str, challenger: str, *, registry: Any, data_dir: Path, repo: Path, champion: str | None = None,
    **kwargs: Any,
) -> GateReport:
    """Run the gate against the registry's champion and record the verdict on the challenger's version, pinned to
    the sha256 of the file judged (``<repo>/intent_classifier_onnx/<challenger>/model.onnx``, hashed here before
    and after the run). Refused (:class:`GateRequired`) when that file is missing, is not the file registered for
    the version, or changed while it was judged."""
    from model_repository.lifecycle.registry import CHAMPION

    champion = champion or registry.alias(MODEL, CHAMPION) or "1"
    if str(champion) == str(challenger):
        raise ValueError(f"version {challenger} is the champion; gate a challenger against it")
    path = served_file(repo, str(challenger))
    if not path.is_file():
        raise GateRequired(f"the gate records the sha256 of the file it judges: {path} is not on this disk "
                           "(--repository: the repository this Triton serves)")
    before = sha256_file(path)
    info = registry.version(MODEL, str(challenger))
    if info is None:
        raise GateRequired(f"{MODEL} version {challenger} is not in the registry: register it before gating")
    if info.tags.get("onnx_sha256") != before:
        raise GateRequired(f"{MODEL} version {challenger}: {path} (sha256 {before[:12]}) is not the file registered "
                           f"for it ({info.tags.get('onnx_sha256', '')[:12] or 'none'}); register the file you mean to gate")
    report = run_gate(triton_url, str(challenger), str(champion), data_dir, **kwargs)
    after = sha256_file(path)
    if after != before:
        raise GateRequired(f"{MODEL} version {challenger}: {path} changed while it was judged "
                           f"({before[:12]} -> {after[:12]}); nothing recorded, gate it again")
    report.figures["sha256"] = before
    flat = {k: v for k, v in report.figures.items() if isinstance(v, (int, float))}
    registry.record_gate(MODEL, str(challenger), passed=report.passed, checks=[c.to_dict() for c in report.checks],
                         baseline=str(champion), sha256=before,
                         figures=flat | {"class_drops": report.figures["class_drops"],
                                         "speed": report.figures["speed"], "answers": report.figures["answers"]})
    return report
