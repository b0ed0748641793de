"""The registry's read side: model versions, their aliases and gate records, as the service and the build see
them. One definition of what "may answer customers" means: the service checks it before a rollout puts a version
on stable or canary (server/rollout/wiring.py); the build side's registry (model_repository/lifecycle/registry.py,
which extends :class:`RegistryReader` with the writes) checks it before a promotion.

A version may answer customers when it is the ``champion`` alias, or when its tags say ``gate.passed`` = "true"
for ``gate.sha256`` (the hash the gate computed from the file it judged) equal to the version's ``onnx_sha256``
(the file registered) -- and, when a served file is named, that file is there and still hashes to both. Callers
name it: ``mangaassist model promote`` / ``rollout`` always (the repository's ``<model>/<version>/model.onnx``),
the service when its Triton repository is on its disk (server/rollout/wiring.py). MLflow only (no service
state): a build-side leaf.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"


class GateRequired(ValueError):
    """A version without a passing gate record for its exact file was asked to answer customers (promotion,
    canary, stable). The service's rollout turns it into ``server.errors.RolloutRefused``."""


@dataclass(frozen=True)
class VersionInfo:
    model: str
    triton_version: str
    registry_version: str
    run_id: str
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def gate_passed(self) -> bool:
        return self.tags.get("gate.passed") == "true" and self.tags.get("gate.sha256") == self.tags.get("onnx_sha256")

    @property
    def lineage(self) -> dict[str, str]:
        keys = ("data_hash", "code_hash", "parent", "onnx_sha256", "git_commit")
        return {k: self.tags.get(k, "") for k in keys}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_served_file(info: VersionInfo, served_file: Path) -> str:
    """GateRequired unless ``served_file`` exists and hashes to the file its gate judged (``gate.sha256``, when
    it has a gate record) and to the file registered (``onnx_sha256``); returns its sha256."""
    name = f"{info.model} version {info.triton_version}"
    if not served_file.is_file():
        raise GateRequired(f"{name}: the served file {served_file} is missing; nothing to check against its gate record")
    digest = sha256_file(served_file)
    gated, registered = info.tags.get("gate.sha256"), info.tags.get("onnx_sha256")
    if gated and digest != gated:
        raise GateRequired(f"{name}: {served_file} (sha256 {digest[:12]}) is not the file its gate judged "
                           f"({gated[:12]}); gate the file that is served")
    if digest != registered:
        raise GateRequired(f"{name}: {served_file} (sha256 {digest[:12]}) is not the file registered for it "
                           f"({(registered or 'none')[:12]})")
    return digest


class RegistryReader:
    """Versions (by their Triton version tag), aliases and gate records of an MLflow model registry."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def versions(self, model: str) -> list[VersionInfo]:
        try:
            found = self.client.search_model_versions(f"name='{model}'")
        except Exception as err:  # noqa: BLE001 -- no such registered model yet
            log.debug("no versions of %s: %s", model, err)
            return []
        aliases: dict[str, list[str]] = {}
        for name, rv in (self.client.get_registered_model(model).aliases or {}).items() if found else ():
            aliases.setdefault(str(rv), []).append(name)
        out = [
            VersionInfo(model, mv.tags.get("triton_version", ""), str(mv.version), mv.run_id or "", dict(mv.tags),
                        tuple(sorted(aliases.get(str(mv.version), ()))))
            for mv in found
        ]
        return sorted(out, key=lambda v: int(v.triton_version or 0))

    def version(self, model: str, triton_version: str) -> VersionInfo | None:
        return next((v for v in self.versions(model) if v.triton_version == str(triton_version)), None)

    def alias(self, model: str, name: str) -> str | None:
        try:
            mv = self.client.get_model_version_by_alias(model, name)
        except Exception:  # noqa: BLE001 -- no such alias / model
            return None
        return mv.tags.get("triton_version")

    def require_gate(self, model: str, triton_version: str, *, served_file: Path | None = None) -> VersionInfo:
        """The version may answer customers (module docstring); else :class:`GateRequired` saying why."""
        info = self.version(model, triton_version)
        if info is None:
            raise GateRequired(f"{model} version {triton_version} is not in the registry; register and gate it first")
        if served_file is not None:
            check_served_file(info, Path(served_file))
        if CHAMPION in info.aliases:
            return info
        if not info.gate_passed:
            state = info.tags.get("gate.passed")
            why = "has no gate record" if state is None else "failed its gate" if state == "false" else "was gated as another file"
            raise GateRequired(f"{model} version {triton_version} {why}: run `mangaassist eval --gate --challenger "
                               f"{triton_version}` and pass it before it serves customers")
        return info
