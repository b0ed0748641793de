"""Model cards and decision records, generated per version from the registry (issue 26 item 4).

A card is rendered from what the registry holds and nothing else, so it cannot drift from the record:

* **lineage** -- the version's tags: data hash, code hash, parent version, the served file's sha256, git commit;
* **training** -- the run's parameters and offline metrics;
* **gate** -- the verdict, the baseline, the sha256 of the file the gate judged (and whether it is the registered
  file), every check with its measured value and floor (the gate run's ``gate.json``);
* **decision record** -- the rollout history the registry noted: promotion (when, who approved, why, the previous
  champion), rollbacks and rollout notes;
* **known limits** -- the model's standing limits (:data:`KNOWN_LIMITS`) and every gate check that passed with less
  than :data:`THIN_MARGIN` of its floor to spare;
* **reversal triggers** -- the live-traffic triggers that would undo it (server/drift/triggers.py) and how.

``mangaassist-lifecycle card --model intent_classifier_onnx [--version 2] [--out DIR]`` prints one card or writes
one Markdown file per version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from model_repository.lifecycle.registry import Registry, VersionInfo

#: a gate check that passed within this share of its floor is listed as a known limit
THIN_MARGIN = 0.10
#: standing limits per model, from what the project measured (docs/models.md, docs/lifecycle.md): a card states them every time
KNOWN_LIMITS: dict[str, tuple[str, ...]] = {
    "intent_classifier_onnx": (
        "trained on generated messages; on the hand-written set it is measured separately and can trail the "
        "generated test split",
        "genuinely ambiguous messages (a recommendation or chit-chat?) carry labels that disagree between sets",
        "on CPU the classifier's p99 rises with concurrent chats; the gate's latency checks price this box, not a GPU",
    ),
}
#: which live-traffic reversal triggers undo a version of this model (server/drift/triggers.py names)
TRIGGERS_FOR: dict[str, tuple[str, ...]] = {
    "intent_classifier_onnx": ("misclassified_escalation", "classifier_confidence", "latency_p99"),
}


def _load_gate(registry: Registry, info: VersionInfo) -> dict[str, Any] | None:
    run_id = info.tags.get("gate.run_id")
    if not run_id:
        return None
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = registry.client.download_artifacts(run_id, "gate.json", tmp)
            return json.loads(Path(path).read_text())
    except Exception:  # noqa: BLE001 -- the run's artefact store moved: the tags still say the verdict
        return None


def thin_checks(checks: list[dict[str, Any]]) -> list[str]:
    """Passing checks whose measured value is within THIN_MARGIN of the threshold (relative), as sentences
    (checks as the gate records them: name, op, threshold, measured, status)."""
    out = []
    for c in checks:
        value, floor = c.get("measured"), c.get("threshold")
        if c.get("status") != "pass" or not isinstance(value, (int, float)) or not isinstance(floor, (int, float)) \
                or floor == 0:
            continue
        if abs(value - floor) <= THIN_MARGIN * abs(floor):
            out.append(f"gate check `{c.get('name', '?')}` passed with little to spare: {value:g} (threshold "
                       f"{c.get('op', '')} {floor:g})")
    return out


def card(registry: Registry, model: str, triton_version: str) -> str:
    info = registry.version(model, triton_version)
    if info is None:
        raise ValueError(f"{model} version {triton_version} is not in the registry ({registry.tracking_uri})")
    run = registry.client.get_run(info.run_id) if info.run_id else None
    t = info.tags
    lines = [f"# {model} version {triton_version}", "",
             f"Aliases: {', '.join(info.aliases) or 'none'}. Registry version {info.registry_version} "
             f"({registry.tracking_uri}).", "", "## Lineage", "", "| | |", "|---|---|"]
    lines += [f"| {k} | `{v or '-'}` |" for k, v in info.lineage.items()]
    if run is not None:
        lines += ["", "## Training", "", "| parameter | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(run.data.params.items())]
        lines += ["", "| offline metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in sorted(run.data.metrics.items())]
    gate = _load_gate(registry, info)
    lines += ["", "## Gate", ""]
    if "gate.passed" not in t:
        lines.append("No gate record: this version may not answer customers.")
    else:
        same = t.get("gate.sha256") == t.get("onnx_sha256")
        lines.append(f"**{'PASS' if t['gate.passed'] == 'true' else 'FAIL'}** against version {t.get('gate.baseline', '?')} "
                     f"at {t.get('gate.at', '?')}; judged file sha256 `{t.get('gate.sha256', '')[:16]}` "
                     f"({'the registered file' if same else 'NOT the registered file'}).")
        if gate:
            lines += ["", "| check | measured | threshold | status |", "|---|---|---|---|"]
            for c in gate.get("checks", []):
                measured = "not measured" if c.get("measured") is None else f"{c['measured']:g}"
                lines.append(f"| {c.get('name', '?')} | {measured} | {c.get('op', '')} {c.get('threshold', '')} | "
                             f"{c.get('status', '?')} |")
    lines += ["", "## Decision record", ""]
    record = []
    if t.get("promoted_at"):
        record.append(f"promoted to champion at {t['promoted_at']}"
                      + (f", approved by **{t['approval.by']}**" if t.get("approval.by") else ", approval not recorded")
                      + (f" ({t['approval.reason']})" if t.get("approval.reason") else "")
                      + (f"; it replaced version {t['previous_champion']}" if t.get("previous_champion") else ""))
    if t.get("rolled_back_at"):
        record.append(f"rolled back at {t['rolled_back_at']}")
    record += [f"{k}: {v}" for k, v in sorted(t.items()) if k.startswith("rollout.")]
    lines += [f"- {r}" for r in record] or ["- not promoted; no rollout noted"]
    limits = [*KNOWN_LIMITS.get(model, ()), *thin_checks(gate.get("checks", []) if gate else [])]
    lines += ["", "## Known limits", ""] + ([f"- {x}" for x in limits] or ["- none recorded"])
    from server.drift.reversal import BY_NAME

    lines += ["", "## Reversal triggers (what undoes it on live traffic)", ""]
    names = TRIGGERS_FOR.get(model, ())
    lines += [f"- **{n}** (`triggers.{BY_NAME[n].setting}`, alert {BY_NAME[n].alert}): {BY_NAME[n].action}." for n in names] \
        or ["- none mapped for this model"]
    return "\n".join(lines) + "\n"


def write_cards(registry: Registry, model: str, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for info in registry.versions(model):
        path = out_dir / f"{model}-v{info.triton_version}.md"
        path.write_text(card(registry, model, info.triton_version), encoding="utf-8")
        paths.append(path)
    return paths
