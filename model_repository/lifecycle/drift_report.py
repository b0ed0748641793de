"""The drift report: signals, the decision table's verdict and plots, regenerated from the traffic log with one
command (``mangaassist drift report``, model_repository/lifecycle/drift.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from server.drift.decision import Decision, GoldenProbe
from server.drift.signals import DriftSignals, sketches
from server.intents import INTENT_LABELS


def as_dict(signals: DriftSignals, decision: Decision, golden: GoldenProbe | None, windows: dict[str, Any]) -> dict:
    return {
        "windows": windows,
        "signals": dataclasses.asdict(signals) | {"firing": signals.firing},
        "golden": dataclasses.asdict(golden) if golden else None,
        "decision": {"cause": decision.cause, "causes": list(decision.causes), "evidence": list(decision.evidence),
                     "action": decision.action},
    }


def write(out: Path, name: str, reference: Sequence[Any], current: Sequence[Any], signals: DriftSignals,
          decision: Decision, golden: GoldenProbe | None, windows: dict[str, Any], thresholds: dict[str, float]) -> Path:
    """``out/name.json``, ``out/name.md`` and ``out/name.png`` (four panels)."""
    out.mkdir(parents=True, exist_ok=True)
    data = as_dict(signals, decision, golden, windows) | {"thresholds": thresholds}
    (out / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    _plot(out / f"{name}.png", reference, current, signals, thresholds)
    (out / f"{name}.md").write_text(_markdown(name, data, signals, decision))
    return out / f"{name}.md"


def _markdown(name: str, data: dict, s: DriftSignals, d: Decision) -> str:
    t = data["thresholds"]
    lines = [f"# Drift report: {name}", "", f"Windows: {data['windows']}", "",
             f"**Decision: {d.cause}** ({', '.join(d.causes)}) -- {d.action}", "", "| signal | value | threshold | alarm |",
             "|---|---|---|---|",
             f"| max intent share shift | {s.max_shift_points:+.1f} pts ({s.max_shift_intent}) | {t['intent_share_points']} pts | {s.alarms['intent_share']} |",
             f"| mean confidence (model-decided) | {_f(s.confidence_current)} (ref {_f(s.confidence_reference)}) | < {t['min_confidence']} | {s.alarms['confidence']} |",
             f"| embedding KL (sketch cluster shares, bias-corrected; G-test p) | {_f(s.embedding_kl)} (p {_p(s.embedding_p)}) | {t['kl_threshold']} (p < {t['kl_alpha']}) | {s.alarms['embedding']} |",
             f"| new patterns: turns with new vocabulary | {s.new_term_share:.3f} | {t['new_term_share']} | {s.alarms['new_patterns']} |",
             f"| new patterns: embedding outlier share | {_f(s.outlier_share)} | {t['outlier_share']} | (either) |",
             "", f"Turns: {s.n_reference} reference, {s.n_current} current.", "", "Evidence:", ""]
    lines += [f"- {e}" for e in d.evidence] or ["- none"]
    if s.new_patterns:
        lines += ["", "New pattern clusters (redacted examples):", ""]
        for p in s.new_patterns:
            lines.append(f"- {p.size} turns ({p.share:.1%}); new terms: {', '.join(p.new_terms) or '-'}")
            lines += [f"  - `{m}`" for m in p.examples[:3]]
    lines += ["", f"![{name}]({name}.png)", ""]
    return "\n".join(lines)


def _p(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2g}"


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _plot(path: Path, reference: Sequence[Any], current: Sequence[Any], s: DriftSignals, t: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 2, figsize=(12, 8))
    x = np.arange(len(INTENT_LABELS))
    ax[0, 0].bar(x - 0.2, [s.intent_share_reference[i] * 100 for i in INTENT_LABELS], 0.4, label="reference")
    ax[0, 0].bar(x + 0.2, [s.intent_share_current[i] * 100 for i in INTENT_LABELS], 0.4, label="current")
    ax[0, 0].set_xticks(x, INTENT_LABELS, rotation=30, ha="right", fontsize=8)
    ax[0, 0].set_ylabel("share of turns (%)")
    ax[0, 0].set_title(f"intent shares (max shift {s.max_shift_points:+.1f} pts, alarm > {t['intent_share_points']})")
    ax[0, 0].legend()
    bins = np.linspace(0, 1, 21)
    for records, label in ((reference, "reference"), (current, "current")):
        conf = [r.confidence for r in records if r.intent and not r.rule_decided and not r.blocked]
        ax[0, 1].hist(conf, bins=bins, alpha=0.5, label=label, density=True)
    ax[0, 1].axvline(t["min_confidence"], color="red", ls="--", label="alarm below mean")
    ax[0, 1].set_title(f"classifier confidence (mean {_f(s.confidence_current)} vs {_f(s.confidence_reference)})")
    ax[0, 1].legend()
    if s.kl_per_dim:
        ax[1, 0].bar(np.arange(len(s.kl_per_dim)), s.kl_per_dim)
        ax[1, 0].set_title(f"sketch KL per dimension (diagnostic); cluster-share KL {_f(s.embedding_kl)}")
    xr, xc = sketches(reference), sketches(current)
    if len(xr) and len(xc) and xr.shape[1] == xc.shape[1]:
        centre = xr.mean(axis=0)
        _, _, vt = np.linalg.svd(xr - centre, full_matrices=False)
        pr, pc = (xr - centre) @ vt[:2].T, (xc - centre) @ vt[:2].T
        ax[1, 1].scatter(pr[:, 0], pr[:, 1], s=4, alpha=0.4, label="reference")
        ax[1, 1].scatter(pc[:, 0], pc[:, 1], s=4, alpha=0.4, label="current")
        ax[1, 1].set_title(f"sketches, reference PCA (outlier share {_f(s.outlier_share)})")
        ax[1, 1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
