"""The model gate: a challenger version of the intent classifier against the champion, both served by the same
tritonserver, measured in one run (interleaved), and the verdict recorded in the registry for that exact file.

Served path measured = the service's versioned path: ``intent_tokenizer`` then ``intent_classifier_onnx`` at
an explicit version (server/backends/triton.py). Checks (defaults; ``--threshold name=value`` overrides):

* ``accuracy`` >= 0.90 and ``min_class_f1`` >= 0.85 on the test split (the design's model floors);
* ``accuracy_drop`` <= 0.02 and ``max_class_drop`` <= 0.02: no class's F1 down more than 2 points vs the
  champion (test split), nor the hand-written set's accuracy (``handwritten_drop``);
* ``p99_ms`` <= 50 (single requests) and ``throughput_ratio`` >= 0.8 of the champion's (the same box, the same
  run; an absolute ``throughput_rps`` floor is optional -- 1,000/s is a GPU instance's, not this CPU's);
* the answers (model_repository/lifecycle/answers.py): a hashed sample of the golden set answered by the service's
  request path with the challenger vs the champion -- ``answer_factual_drop``, ``answer_relevance_drop``,
  ``answer_completeness_drop`` <= 0.02 and ``answer_fabricated_increase`` <= 0.

``run_gate`` returns a :class:`GateReport`; ``mangaassist eval --gate --challenger N`` prints it, records it
(``Registry.record_gate``) and exits 3 when it fails. Without a passing record the registry refuses to promote
and the service refuses to canary or serve the version (``Registry.require_gate``).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from model_repository.lifecycle.answers import CHECKS as ANSWER_CHECKS, AnswerOptions, answer_figures
from model_repository.lifecycle.versions import MODEL, ROOT, TOKENIZER, _rows

#: name -> (op, default threshold)
DEFAULTS: dict[str, tuple[str, float]] = {
    "accuracy": (">=", 0.90),
    "min_class_f1": (">=", 0.85),
    "accuracy_drop": ("<=", 0.02),
    "max_class_drop": ("<=", 0.02),
    "handwritten_drop": ("<=", 0.02),
    "p99_ms": ("<=", 50.0),
    "throughput_ratio": (">=", 0.8),
    **ANSWER_CHECKS,
}
OPTIONAL: dict[str, str] = {"throughput_rps": ">="}


@dataclass
class GateReport:
    challenger: str
    champion: str
    checks: list[Any]  # clients.evaluation.gate.Check
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not any(c.status == "FAIL" for c in self.checks)

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


def accuracy_report(clf: TritonClassifier, version: str, data_dir: Path, batch: int = 32) -> dict[str, Any]:
    key = (clf.url, str(version), str(Path(data_dir).resolve()))
    if key not in _REPORTS:
        _REPORTS[key] = _accuracy_report(clf, version, data_dir, batch)
    return _REPORTS[key]


def _accuracy_report(clf: TritonClassifier, version: str, data_dir: Path, batch: int) -> dict[str, Any]:
    from model_repository.training.intent import classification_report
    from server.intents import LABEL_TO_ID

    out = {}
    sets = {"test": data_dir / "intents" / "test.jsonl", "handwritten": ROOT / "tests" / "fixtures" / "intents_handwritten.jsonl"}
    for name, path in sets.items():
        rows = _rows(path)
        texts = [r["text"] for r in rows]
        probs = np.concatenate([clf.probs(texts[i : i + batch], version) for i in range(0, len(texts), batch)])
        rep = classification_report([LABEL_TO_ID[r["label"]] for r in rows], probs.argmax(1).tolist())
        rep.pop("confusion_matrix", None)
        rep["mean_confidence"] = round(float(probs.max(1).mean()), 4)
        out[name] = rep
    return out


def speed(clf: TritonClassifier, versions: list[str], texts: list[str], *, requests: int, seconds: float,
          concurrency: int) -> dict[str, dict[str, float]]:
    """Single-request latency (interleaved across versions, so drift on a shared box hits both alike) and
    closed-loop throughput at ``concurrency`` (one text per request), per version."""
    lat: dict[str, list[float]] = {v: [] for v in versions}
    for v in versions:  # warm-up
        clf.probs(texts[:1], v)
    for i in range(requests):
        for v in versions:
            t0 = time.perf_counter()
            clf.probs([texts[i % len(texts)]], v)
            lat[v].append((time.perf_counter() - t0) * 1000)
    out = {}
    for v in versions:
        stop = time.perf_counter() + seconds
        counts = [0] * concurrency

        def loop(k: int) -> None:
            j = k
            while time.perf_counter() < stop:
                clf.probs([texts[j % len(texts)]], v)
                counts[k] += 1
                j += concurrency

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(loop, range(concurrency)))
        elapsed = time.perf_counter() - started
        arr = np.array(lat[v])
        out[v] = {"p50_ms": round(float(np.percentile(arr, 50)), 2), "p99_ms": round(float(np.percentile(arr, 99)), 2),
                  "throughput_rps": round(sum(counts) / elapsed, 1)}
    return out


def run_gate(
    triton_url: str, challenger: str, champion: str, data_dir: Path, *, overrides: Mapping[str, float] | None = None,
    requests: int = 200, seconds: float = 3.0, concurrency: int = 4, answers: AnswerOptions | None = None,
) -> GateReport:
    from clients.evaluation.gate import Check

    table = dict(DEFAULTS)
    for name, value in (overrides or {}).items():
        op = DEFAULTS.get(name, (OPTIONAL.get(name), 0))[0]
        if op is None:
            raise ValueError(f"unknown model-gate threshold {name!r}; known: {sorted({*DEFAULTS, *OPTIONAL})}")
        table[name] = (op, float(value))
    clf = TritonClassifier(triton_url)
    acc = {v: accuracy_report(clf, v, data_dir) for v in (champion, challenger)}
    texts = [r["text"] for r in _rows(data_dir / "intents" / "test.jsonl")][:200]
    perf = speed(clf, [champion, challenger], texts, requests=requests, seconds=seconds, concurrency=concurrency)
    judged = answer_figures(triton_url, challenger, champion, data_dir, answers or AnswerOptions())
    ch, base = acc[challenger]["test"], acc[champion]["test"]
    drops = {k: round(base["per_class_f1"][k] - ch["per_class_f1"][k], 4) for k in base["per_class_f1"]}
    figures: dict[str, Any] = {
        "accuracy": ch["accuracy"],
        "min_class_f1": min(ch["per_class_f1"].values()),
        "accuracy_drop": round(base["accuracy"] - ch["accuracy"], 4),
        "max_class_drop": max(drops.values()),
        "handwritten_drop": round(acc[champion]["handwritten"]["accuracy"] - acc[challenger]["handwritten"]["accuracy"], 4),
        "p99_ms": perf[challenger]["p99_ms"],
        "throughput_ratio": round(perf[challenger]["throughput_rps"] / max(perf[champion]["throughput_rps"], 1e-9), 3),
        "throughput_rps": perf[challenger]["throughput_rps"],
        **{name: judged[name] for name in ANSWER_CHECKS},
        "answer_records": judged["records"],
        "answer_records_differing": judged["differing"],
    }
    checks = [Check(name, op, value, figures.get(name)) for name, (op, value) in table.items()]
    figures.update({"class_drops": drops, "accuracy_reports": acc, "speed": perf, "answers": judged})
    return GateReport(challenger, champion, checks, figures)


def gate_and_record(
    triton_url: str, challenger: str, *, registry: Any, data_dir: Path, champion: str | None = None, **kwargs: Any
) -> GateReport:
    """Run the gate against the registry's champion and record the verdict on the challenger's version."""
    from model_repository.lifecycle.registry import CHAMPION

    champion = champion or registry.alias(MODEL, CHAMPION) or "1"
    if str(champion) == str(challenger):
        raise ValueError(f"version {challenger} is the champion; gate a challenger against it")
    report = run_gate(triton_url, str(challenger), str(champion), data_dir, **kwargs)
    flat = {k: v for k, v in report.figures.items() if isinstance(v, (int, float))}
    registry.record_gate(MODEL, str(challenger), passed=report.passed, checks=[c.to_dict() for c in report.checks],
                         baseline=str(champion), figures=flat | {"class_drops": report.figures["class_drops"],
                                                                 "speed": report.figures["speed"],
                                                                 "answers": report.figures["answers"]})
    return report
