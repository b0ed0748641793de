"""The rollout file: which classifier version answers whom. YAML (or JSON), validated before it is used::

    model: intent_classifier_onnx   # the Triton model that holds the versions (the only one today)
    stable: "1"                     # answers every session the canary does not take
    shadow: "2"                     # optional: also called after each response, off the critical path
    canary:                         # optional: a stable hash of session_id sends this share to the version
      version: "2"
      percent: 10                   # 0-100 (floats allowed: 0.5)

:func:`parse` checks the shape (unknown keys, version strings, 0 <= percent <= 100, canary != stable) and
raises :class:`~server.errors.RolloutRefused`; the controller then checks that Triton serves every version
named and that stable/canary have a passing gate record (server/rollout/controller.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from model_repository.contract import VERSIONED_CLASSIFIER
from server.errors import RolloutRefused

BUCKETS = 10_000  # canary share resolution: 0.01 %


@dataclass(frozen=True)
class Canary:
    version: str
    percent: float


@dataclass(frozen=True)
class RolloutConfig:
    stable: str
    shadow: str | None = None
    canary: Canary | None = None
    model: str = VERSIONED_CLASSIFIER

    def version_for(self, session_id: str) -> str:
        """The version answering ``session_id``: a stable hash puts the same session in the same bucket on every
        pod and every reload, so a conversation does not flip between versions while the share stays put."""
        if self.canary is None or self.canary.percent <= 0 or not session_id:
            return self.stable
        return self.canary.version if bucket(session_id) < self.canary.percent * BUCKETS / 100 else self.stable

    def serving(self) -> tuple[str, ...]:
        """Versions that answer customers (need a passing gate)."""
        return (self.stable,) + ((self.canary.version,) if self.canary and self.canary.percent > 0 else ())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model, "stable": self.stable}
        if self.shadow:
            out["shadow"] = self.shadow
        if self.canary:
            out["canary"] = asdict(self.canary)
        return out


def bucket(session_id: str) -> int:
    return int.from_bytes(hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).digest()[:8], "big") % BUCKETS


def _version(value: Any, where: str) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not text.isdigit() or int(text) < 1:
        raise RolloutRefused(f"rollout {where}: {value!r} is not a model version (a positive integer)")
    return str(int(text))


def parse(data: Any, *, model: str = VERSIONED_CLASSIFIER) -> RolloutConfig:
    if not isinstance(data, Mapping):
        raise RolloutRefused("rollout config must be a mapping with at least `stable`")
    unknown = set(data) - {"model", "stable", "shadow", "canary"}
    if unknown:
        raise RolloutRefused(f"rollout config: unknown key(s) {sorted(unknown)}; known: model, stable, shadow, canary")
    if data.get("model", model) != model:
        raise RolloutRefused(f"rollout config: model {data.get('model')!r} has no rollout; only {model!r} does")
    if "stable" not in data:
        raise RolloutRefused("rollout config: `stable` (the version answering everyone else) is required")
    stable = _version(data["stable"], "stable")
    shadow = _version(data["shadow"], "shadow") if data.get("shadow") not in (None, "") else None
    canary = None
    raw = data.get("canary")
    if raw not in (None, {}):
        if not isinstance(raw, Mapping) or set(raw) - {"version", "percent"} or "version" not in raw:
            raise RolloutRefused("rollout canary: expected {version: N, percent: 0-100}")
        try:
            percent = float(raw.get("percent", 0))
        except (TypeError, ValueError):
            raise RolloutRefused(f"rollout canary.percent: {raw.get('percent')!r} is not a number") from None
        if not 0 <= percent <= 100 or percent != percent:
            raise RolloutRefused(f"rollout canary.percent: {percent:g} is outside 0-100")
        canary = Canary(_version(raw["version"], "canary.version"), percent)
        if canary.version == stable:
            raise RolloutRefused(f"rollout canary.version {canary.version} is the stable version")
    return RolloutConfig(stable=stable, shadow=shadow, canary=canary, model=model)


def read(path: Path | str) -> RolloutConfig:
    import yaml

    try:
        text = Path(path).read_text()
    except OSError as err:
        raise RolloutRefused(f"rollout config {path}: {err.strerror or err}") from None
    try:
        return parse(yaml.safe_load(text) or {})
    except yaml.YAMLError as err:
        raise RolloutRefused(f"rollout config {path}: not YAML/JSON ({err})") from None


def write(path: Path | str, config: RolloutConfig) -> None:
    """Atomically (rename), so a watcher never reads half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".rollout.")
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(config.to_dict(), indent=2) + "\n")
    os.replace(tmp, path)
