"""What a run leaves behind in ``--out``: ``eval.json`` (everything), ``eval.md`` (the readable summary) and
two PNG plots (per-intent rates, answer-stage latency per tier). Also reads the build's model report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from model_repository.lifecycle.gate import Check

JSON_NAME, MD_NAME = "eval.json", "eval.md"
RATES_PLOT, LATENCY_PLOT = "per_intent_rates.png", "answer_latency_by_tier.png"
PLOTTED_RATES = ("factual", "relevance", "complete", "helpful", "safety", "format")
METRIC_WORDS = ("accuracy", "f1", "recall", "mrr", "auc", "precision")
SKIPPED_SECTIONS = ("variants", "confusion_matrix", "config", "fusion_tuning")
TOP_FAILURES = 15


# ----------------------------------------------------------------------------------------- model report
def model_figures(path: str | Path | None) -> dict[str, Any]:
    """The model-quality figures of ``summary.json`` (``present`` false when it is absent or unreadable)."""
    if not path or not Path(path).is_file():
        return {"present": False}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return {"present": False, "error": f"unreadable {path}: {err}"}
    if not isinstance(data, dict):
        return {"present": False, "error": f"{path} is not a JSON object"}
    test = _dig(data, "intent_classifier", "test")
    per_class = {k: v for k, v in (_dig(test, "per_class_f1") or {}).items() if _num(v) is not None}
    figures = {
        "present": True,
        "path": str(path),
        "intent_accuracy": _num(_dig(test, "accuracy")),
        "intent_macro_f1": _num(_dig(test, "macro_f1")),
        "per_class_f1": per_class,
        "min_class_f1": min(per_class.values()) if per_class else None,
        "handwritten_accuracy": _num(_dig(data, "intent_classifier", "handwritten", "accuracy")),
        "retrieval_recall@3": _num(_dig(data, "embedding_adapter", "adapted", "recall@3")),
        "retrieval_recall@3_base": _num(_dig(data, "embedding_adapter", "base", "recall@3")),
    }
    sections = ("intent_classifier", "embedding_adapter", "query_embedder", "reranker", "hallucination_scorer")
    figures["all"] = {k: v for s in sections for k, v in _numeric_leaves(data.get(s), s)}
    return figures


def _dig(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _numeric_leaves(data: Any, prefix: str) -> Iterable[tuple[str, float]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            if str(key) not in SKIPPED_SECTIONS:
                yield from _numeric_leaves(value, f"{prefix}.{key}")
    elif _num(data) is not None and any(w in ".".join(prefix.lower().split(".")[-2:]) for w in METRIC_WORDS):
        yield prefix, float(data)


# ----------------------------------------------------------------------------------------- writing
def write(report: dict[str, Any], rows: Sequence[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / JSON_NAME).write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    (out / MD_NAME).write_text(markdown(report), encoding="utf-8")
    return [out / JSON_NAME, out / MD_NAME, *plots(report, rows, out)]


def markdown(report: dict[str, Any]) -> str:
    s, gate = report["summary"], report["gate"]
    checks = {c["name"]: c for c in gate["checks"]}
    svc = report.get("service", {})
    lines = [
        "# MangaAssist answer evaluation",
        "",
        f"{report['timestamp']} · target `{report['config']['target']}` · service {svc.get('service_version', '?')}"
        f" · tiers {', '.join(svc.get('llm_tiers', [])) or '?'} · {s['records']} records"
        f" · errors {s['errors'] or 'none'} · {report['wall_s']} s",
        "",
        f"**Gate: {'PASS' if gate['passed'] else 'FAIL'}**" + ("" if gate["enabled"] else " (informational: run without --gate)"),
        *[f"- failed: {c}" for c in gate["failed"]],
        "", "## Dimensions", "",
    ]
    rows = []
    for label, name in DIMENSION_ROWS:
        c = checks.get(name)
        rows.append([label, fmt(s["headline"].get(name)), f"{c['op']} {c['threshold']:g}" if c else "", c["status"] if c else ""])
    human = s["helpfulness"]["human"]
    if human:
        rows.append([f"helpfulness (human, n={human['n']})", f"mean {fmt(human['mean'])}, ≥4: {fmt(human['share_ge_4'])}", "", ""])
    rows += [[c["name"], fmt(c["measured"]), f"{c['op']} {c['threshold']:g}", c["status"]] for c in gate["checks"]
             if c["name"].startswith("answer_p99_ms.") or c["name"] in ("intent_accuracy", "min_class_f1")]
    lines += _table(["dimension", "measured", "target", "status"], rows)

    rates = ("factual", "relevance", "intent_match", "complete", "helpful", "safety", "format")
    fluency = s["fluency"]["per_intent"]
    lines += ["", "## Per intent", ""] + _table(
        ["intent", "n", *rates, "ROUGE-L"],
        [[k, r["n"], *(fmt(r[x]) for x in rates), fmt(fluency.get(k, {}).get("rouge_l_f1"))] for k, r in s["by_intent"].items()],
    )
    edge_rates = ("factual", "relevance", "complete", "safety", "format")
    lines += ["", "## Per edge tag", ""] + _table(
        ["edge", "n", *edge_rates], [[k, r["n"], *(fmt(r[x]) for x in edge_rates)] for k, r in s["by_edge"].items()]
    )
    lat = s["latency"]
    lines += ["", "## Latency per tier (ms)", ""] + _table(
        ["tier", "n", "answer p50", "answer p95", "answer p99", "request p50", "request p99"],
        [[tier, t["n"], *(fmt(t["answer_ms"][p]) for p in ("p50", "p95", "p99")), *(fmt(t["client_ms"][p]) for p in ("p50", "p99"))]
         for tier, t in lat["per_tier"].items()],
    )
    tt = lat["ttft_ms"]
    lines += ["", f"Time to first streamed text over ChatStream: n={tt['n']} (no text: {tt['no_delta']}), "
                  f"p50 {fmt(tt['p50'])} ms, p99 {fmt(tt['p99'])} ms."]
    degraded = s.get("degraded") or {}
    lines += ["", "Degraded answers (the service could not reach a model in budget): "
              + (", ".join(f"{k} {v}" for k, v in sorted(degraded.items())) or "none") + "."]
    models = report.get("models", {})
    if models.get("present"):
        lines += ["", "## Models (build report)", ""] + [f"- {k}: {fmt(v)}" for k, v in models.items() if _num(v) is not None]
    judge = report.get("judge")
    if judge and judge.get("mutants"):
        lines += ["", "## The fact checker vs one-fact mutations of the references", "",
                  f"Recall {fmt(judge['recall'])} on {judge['mutants']} mutants (target {fmt(judge['recall_floor'])}); "
                  + "; ".join(f"{k} flagged {c['flagged']}/{c['n']}" for k, c in judge["controls"].items())
                  + " (must be 0). `python -m model_repository.lifecycle.evaluation.mutations` lists the misses.", ""]
        lines += _table(["mutation kind", "mutants", "flagged", "recall", "floor"],
                        [[k, r["n"], r["caught"], fmt(r["recall"]), fmt(r["floor"])] for k, r in judge["kinds"].items()])
        lines += [f"- below target: {x}" for x in judge.get("below_target", [])]
    lines += ["", f"## Top failures ({len(report['failures'])} records failed something)", ""]
    for f in report["failures"][:TOP_FAILURES]:
        answer = _short(f["answer"]) if f["answer"] else f"(no answer: {f['error']})"
        lines.append(f"- `{f['id']}` ({f['intent']}) failed {', '.join(f['failed']) or f['error']}: {_short(f['message'])} → {answer}")
        for key in ("violations", "relevance_failed", "missing", "forbidden_present", "safety_failed", "format_problems"):
            if f.get(key):
                lines.append(f"  - {key}: {_short(json.dumps(f[key], ensure_ascii=False), 300)}")
    lines.append("")
    return "\n".join(lines)


DIMENSION_ROWS = (
    ("factual correctness (no violations)", "factual"), ("fabricated identifiers/figures", "fabricated"),
    ("relevance (resolved product / edition / order / policy section)", "relevance"), ("intent match (label only)", "intent_match"), ("declined not-carried titles", "declined_not_carried"),
    ("completeness (complete rate)", "completeness"), ("mean must-state coverage", "coverage"),
    ("helpfulness (automatic proxy)", "helpfulness"), ("fluency ROUGE-L F1", "rouge_l"), ("fluency BLEU", "bleu"),
    ("safety", "safety"), ("format", "format"), ("time to first text p99 (ms)", "ttft_p99_ms"),
)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(map(str, r)) + " |" for r in rows]


def plots(report: dict[str, Any], rows: Sequence[dict[str, Any]], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_intent = report["summary"]["by_intent"]
    intents = list(by_intent)
    fig, ax = plt.subplots(figsize=(max(8, 1.4 * len(intents)), 4.5))
    width = 0.8 / len(PLOTTED_RATES)
    for i, rate in enumerate(PLOTTED_RATES):
        values = [by_intent[k][rate] if by_intent[k][rate] is not None else 0 for k in intents]
        ax.bar([x + i * width for x in range(len(intents))], values, width, label=rate)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(intents))], intents, rotation=30, ha="right")
    ax.set_ylim(0, 1.2)
    ax.set_ylabel("rate")
    ax.set_title("Answer quality per intent")
    ax.legend(ncol=len(PLOTTED_RATES), fontsize=8, loc="upper center")
    fig.tight_layout()
    fig.savefig(out / RATES_PLOT, dpi=110)
    plt.close(fig)

    tiers: dict[str, list[float]] = {}
    for r in rows:
        if r["answer_ms"] is not None:
            tiers.setdefault(r["tier"], []).append(r["answer_ms"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if tiers:
        names = sorted(tiers)
        ax.boxplot([tiers[t] for t in names], showfliers=True)
        ax.set_xticks(range(1, len(names) + 1), [f"{t}\n(n={len(tiers[t])})" for t in names])
        if max(max(v) for v in tiers.values()) > 50 * max(min(min(v) for v in tiers.values()), 0.01):
            ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no answer-stage timings", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("answer stage (ms)")
    ax.set_title("Answer-stage latency per tier")
    fig.tight_layout()
    fig.savefig(out / LATENCY_PLOT, dpi=110)
    plt.close(fig)
    return [out / RATES_PLOT, out / LATENCY_PLOT]


def gate_section(checks: Sequence[Check], enabled: bool) -> dict[str, Any]:
    bad = [c for c in checks if c.status == "FAIL"]
    return {"enabled": enabled, "passed": not bad, "checks": [c.to_dict() for c in checks], "failed": [c.describe() for c in bad]}


def fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1 else f"{value:.1f}"
    return str(value)


def _short(text: str, limit: int = 140) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"
