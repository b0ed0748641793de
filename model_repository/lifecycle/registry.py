"""The model registry: every version of a served model with its lineage, its gate record and its aliases.

MLflow tracking + model registry (SQLite backend by default: ``<lifecycle dir>/mlflow.db``, artefacts under
``<lifecycle dir>/artifacts``). The registered model is named after the Triton model that holds the versions
(``intent_classifier_onnx``); each MLflow model version carries the Triton version directory it serves as the
tag ``triton_version`` (MLflow's own numbering is not relied on).

API (build side, CLI, the service's rollout validation, the drift/traffic-log work)::

    reg = Registry(lifecycle_dir)                          # or Registry(tracking_uri="postgresql://...")
    reg.log_version(model, triton_version, params=..., metrics=..., lineage=..., artefacts=...) -> VersionInfo
    reg.version(model, triton_version) -> VersionInfo | None   # tags, run id, lineage, gate record
    reg.versions(model) -> list[VersionInfo]
    reg.record_gate(model, triton_version, passed, checks, baseline=..., sha256=...)   # the gate's verdict, pinned
                                                           # to the sha256 of the ONNX file it judged (hashed by
                                                           # the gate from that file, lifecycle/gate.py)
    reg.require_gate(model, triton_version, served_file=p) # GateRequired unless a passing gate record for that
                                                           # exact file exists (the champion is allowed as is) and
                                                           # the served file ``p`` still hashes to it
    reg.promote(model, triton_version, served_file=p) -> previous champion   # refuses without require_gate
    reg.set_alias(model, "challenger", v) / reg.alias(model, "champion") -> "2" | None
    reg.note(model, triton_version, key, value)            # e.g. rollout.rolled_back = reason

Lineage tags on every version: ``data_hash`` (the training rows as used: subset, shuffling), ``code_hash``
(the training/export code), ``parent`` (the Triton version it was fine-tuned from, "" = the base encoder),
``onnx_sha256`` (the served file), ``git_commit``; the config is the run's params, the offline metrics its
metrics. Gate tags: ``gate.passed`` ("true"/"false"), ``gate.sha256``, ``gate.baseline``, ``gate.run_id``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from server.rollout.gate_records import (  # noqa: F401 -- re-exported: the registry's read side
    CHALLENGER,
    CHAMPION,
    GateRequired,
    RegistryReader,
    VersionInfo,
    sha256_file,
)

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LIFECYCLE_DIR = ROOT / ".lifecycle"


def sha256_files(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(p.name.encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()[:16]


def sqlite_uri(lifecycle_dir: Path | str) -> str:
    """The default tracking + registry store of a lifecycle directory."""
    return f"sqlite:///{Path(lifecycle_dir).resolve() / 'mlflow.db'}"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


class Registry(RegistryReader):
    """The read side (:class:`RegistryReader`: versions, aliases, ``require_gate``) plus runs, versions, gate
    records, aliases, promotion and rollback."""

    def __init__(self, lifecycle_dir: Path | str = DEFAULT_LIFECYCLE_DIR, *, tracking_uri: str | None = None) -> None:
        self.dir = Path(lifecycle_dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        super().__init__(tracking_uri or sqlite_uri(self.dir))
        self.artifacts = (self.dir / "artifacts").as_uri()

    # ------------------------------------------------------------------ versions + lineage
    def _experiment(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        return self.client.create_experiment(name, artifact_location=f"{self.artifacts}/{name}")

    def log_version(
        self,
        model: str,
        triton_version: str,
        *,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        lineage: Mapping[str, str],
        artefacts: Mapping[str, Any] | None = None,
        source: str = "",
    ) -> VersionInfo:
        """One MLflow run (params, metrics, lineage tags, JSON artefacts) + a registry version tagged with
        ``triton_version``. Raises ValueError when that Triton version is registered already."""
        if self.version(model, triton_version) is not None:
            raise ValueError(f"{model} version {triton_version} is registered already")
        run = self.client.create_run(self._experiment(model), run_name=f"{model}-v{triton_version}",
                                     tags={"triton_version": str(triton_version), **lineage})
        rid = run.info.run_id
        for k, v in params.items():
            self.client.log_param(rid, k, str(v)[:500])
        for k, v in metrics.items():
            self.client.log_metric(rid, k, float(v))
        for name, doc in (artefacts or {}).items():
            self.client.log_text(rid, json.dumps(doc, indent=2, default=str), f"{name}.json")
        self.client.set_terminated(rid)
        try:
            self.client.create_registered_model(model)
        except Exception as err:  # noqa: BLE001 -- RESOURCE_ALREADY_EXISTS
            if "already exists" not in str(err).lower() and "RESOURCE_ALREADY_EXISTS" not in str(err):
                raise
        tags = {"triton_version": str(triton_version), **{k: str(v) for k, v in lineage.items()}}
        self.client.create_model_version(model, source or f"{self.artifacts}/{model}", run_id=rid, tags=tags)
        info = self.version(model, triton_version)
        assert info is not None
        return info

    def _registry_version(self, model: str, triton_version: str) -> str:
        info = self.version(model, triton_version)
        if info is None:
            raise GateRequired(f"{model} version {triton_version} is not in the registry ({self.tracking_uri})")
        return info.registry_version

    def note(self, model: str, triton_version: str, key: str, value: str) -> None:
        self.client.set_model_version_tag(model, self._registry_version(model, triton_version), key, str(value))

    # ------------------------------------------------------------------ aliases
    def set_alias(self, model: str, name: str, triton_version: str) -> None:
        self.client.set_registered_model_alias(model, name, self._registry_version(model, triton_version))

    def drop_alias(self, model: str, name: str) -> None:
        try:
            self.client.delete_registered_model_alias(model, name)
        except Exception as err:  # noqa: BLE001 -- not set
            log.debug("alias %s of %s not set: %s", name, model, err)

    # ------------------------------------------------------------------ the gate
    def record_gate(
        self, model: str, triton_version: str, *, passed: bool, checks: list[dict[str, Any]], baseline: str,
        sha256: str, figures: Mapping[str, Any] | None = None,
    ) -> str:
        """Log the gate run (checks, figures) and pin the verdict to ``sha256``: the hash of the file the gate
        judged, computed from that file by the gate (never copied from the version's registration tag)."""
        info = self.version(model, triton_version)
        if info is None:
            raise GateRequired(f"{model} version {triton_version} is not in the registry: register it before gating")
        if not (isinstance(sha256, str) and len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256)):
            raise ValueError(f"record_gate: sha256 must be the judged file's 64-hex digest, got {sha256!r}")
        run = self.client.create_run(self._experiment(f"{model}-gate"), run_name=f"gate-v{triton_version}-vs-v{baseline}",
                                     tags={"triton_version": str(triton_version), "baseline": baseline,
                                           "passed": str(passed).lower()})
        rid = run.info.run_id
        for k, v in (figures or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.client.log_metric(rid, k, float(v))
        self.client.log_text(rid, json.dumps({"passed": passed, "sha256": sha256, "checks": checks, "figures": figures},
                                             indent=2, default=str), "gate.json")
        self.client.set_terminated(rid)
        rv = info.registry_version
        for key, value in {"gate.passed": str(passed).lower(), "gate.sha256": sha256,
                           "gate.baseline": baseline, "gate.run_id": rid,
                           "gate.at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}.items():
            self.client.set_model_version_tag(model, rv, key, value)
        return rid

    def promote(self, model: str, triton_version: str, *, served_file: Path | None = None,
                approved_by: str = "", reason: str = "") -> str | None:
        """champion := triton_version (refused without a passing gate for ``served_file``, the file Triton serves
        for it); returns the previous champion. ``approved_by`` / ``reason``: the person who approved the promotion
        and why, noted on the version (its model card's decision record)."""
        self.require_gate(model, triton_version, served_file=served_file)
        previous = self.alias(model, CHAMPION)
        self.set_alias(model, CHAMPION, triton_version)
        if self.alias(model, CHALLENGER) == str(triton_version):
            self.drop_alias(model, CHALLENGER)
        if previous and previous != str(triton_version):
            self.note(model, triton_version, "previous_champion", previous)
        self.note(model, triton_version, "promoted_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        if approved_by:
            self.note(model, triton_version, "approval.by", approved_by)
            self.note(model, triton_version, "approval.reason", reason or "-")
        return previous

    def rollback(self, model: str) -> str:
        """champion := the version the current champion replaced. Returns it."""
        current = self.alias(model, CHAMPION)
        info = self.version(model, current) if current else None
        previous = info.tags.get("previous_champion") if info else None
        if not previous:
            raise ValueError(f"{model}: the champion (version {current}) replaced no earlier version; nothing to roll back to")
        self.set_alias(model, CHAMPION, previous)
        self.note(model, current, "rolled_back_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        return previous

