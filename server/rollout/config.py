"""The rollout file: which classifier version answers whom. YAML (or JSON), validated before it is used::

    model: intent_classifier_onnx   # the Triton model that holds the versions (the only one today)
    stable: "1"                     # answers every session the canary does not take
    shadow: "2"                     # optional: also called after each response, off the critical path
    canary:                         # optional: a stable hash of session_id sends this share to the version
      version: "2"
      percent: 10                   # 0-100 (floats allowed: 0.5)
    plan:                           # optional: the schedule the service follows on its own (server/rollout/schedule.py)
      version: "2"                  # the candidate: the shadow (shadow phase) or the canary (a canary step)
      shadow: {min_samples: 200, min_seconds: 3600}   # shadow at least this long and this many shadow calls
      steps:                        # canary steps, each held >= dwell_s and >= min_samples canary answers
        - {percent: 1, dwell_s: 3600, min_samples: 500}
        - {percent: 5, dwell_s: 3600, min_samples: 500}
        - {percent: 25, dwell_s: 3600, min_samples: 500}
        - {percent: 100, dwell_s: 3600, min_samples: 500}
      require_approval: false       # true: stop at the last step until `mangaassist model promote N --approved-by ..`

A file with a plan is at one point of it: ``shadow: <plan.version>`` and no canary (the shadow phase), or
``canary: {version: <plan.version>, percent: <one of the steps>}``. The schedule job rewrites the file (and the
cluster's decision) as it moves on; ``steps`` defaults to 1 -> 5 -> 25 -> 100 (:data:`DEFAULT_STEPS`). A file without
a plan behaves exactly as before plans existed.

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

from contracts.models import VERSIONED_CLASSIFIER
from server.errors import RolloutRefused

BUCKETS = 10_000  # canary share resolution: 0.01 %


@dataclass(frozen=True)
class Canary:
    version: str
    percent: float


@dataclass(frozen=True)
class Step:
    percent: float
    dwell_s: float = 3600.0
    min_samples: int = 500  # canary answers at this step


@dataclass(frozen=True)
class Plan:
    version: str
    shadow_min_samples: int = 200  # shadow calls
    shadow_min_seconds: float = 3600.0
    steps: tuple[Step, ...] = ()
    require_approval: bool = False

    def step_index(self, percent: float) -> int | None:
        for i, step in enumerate(self.steps):
            if step.percent == percent:
                return i
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version,
                "shadow": {"min_samples": self.shadow_min_samples, "min_seconds": self.shadow_min_seconds},
                "steps": [asdict(s) for s in self.steps], "require_approval": self.require_approval}


DEFAULT_STEPS = (1.0, 5.0, 25.0, 100.0)


@dataclass(frozen=True)
class RolloutConfig:
    stable: str
    shadow: str | None = None
    canary: Canary | None = None
    model: str = VERSIONED_CLASSIFIER
    plan: Plan | None = None

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
        if self.plan:
            out["plan"] = self.plan.to_dict()
        return out

    def phase(self) -> tuple[str, int | None]:
        """Where the plan stands: ("none", None) without a plan, ("shadow", None), or ("canary", step index)."""
        if self.plan is None:
            return "none", None
        if self.canary is None:
            return "shadow", None
        return "canary", self.plan.step_index(self.canary.percent)


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
    unknown = set(data) - {"model", "stable", "shadow", "canary", "plan"}
    if unknown:
        raise RolloutRefused(f"rollout config: unknown key(s) {sorted(unknown)}; known: model, stable, shadow, canary, plan")
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
    plan = _plan(data["plan"], stable, shadow, canary) if data.get("plan") not in (None, {}) else None
    return RolloutConfig(stable=stable, shadow=shadow, canary=canary, model=model, plan=plan)


def _number(raw: Mapping[str, Any], key: str, default: float, where: str, *, integer: bool = False) -> Any:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or value < 0:
        raise RolloutRefused(f"rollout plan {where}.{key}: {value!r} is not a number >= 0")
    if integer and int(value) != value:
        raise RolloutRefused(f"rollout plan {where}.{key}: {value!r} is not a whole number")
    return int(value) if integer else float(value)


def _plan(raw: Any, stable: str, shadow: str | None, canary: Canary | None) -> Plan:
    """The schedule, and that the file stands at one point of it (its shadow phase or one of its canary steps)."""
    if not isinstance(raw, Mapping) or set(raw) - {"version", "shadow", "steps", "require_approval"} or "version" not in raw:
        raise RolloutRefused("rollout plan: expected {version: N, shadow: {min_samples, min_seconds}, "
                             "steps: [{percent, dwell_s, min_samples}], require_approval: bool}")
    version = _version(raw["version"], "plan.version")
    if version == stable:
        raise RolloutRefused(f"rollout plan.version {version} is the stable version")
    sh = raw.get("shadow") or {}
    if not isinstance(sh, Mapping) or set(sh) - {"min_samples", "min_seconds"}:
        raise RolloutRefused("rollout plan.shadow: expected {min_samples: N, min_seconds: S}")
    steps_raw = raw.get("steps")
    if steps_raw is None:
        steps_raw = [{"percent": p} for p in DEFAULT_STEPS]
    if not isinstance(steps_raw, list) or not steps_raw:
        raise RolloutRefused("rollout plan.steps: expected a non-empty list of {percent, dwell_s, min_samples}")
    steps = []
    for i, st in enumerate(steps_raw):
        if not isinstance(st, Mapping) or set(st) - {"percent", "dwell_s", "min_samples"} or "percent" not in st:
            raise RolloutRefused(f"rollout plan.steps[{i}]: expected {{percent, dwell_s, min_samples}}")
        step = Step(_number(st, "percent", 0, f"steps[{i}]"), _number(st, "dwell_s", Step.dwell_s, f"steps[{i}]"),
                    _number(st, "min_samples", Step.min_samples, f"steps[{i}]", integer=True))
        if not 0 < step.percent <= 100 or (steps and step.percent <= steps[-1].percent):
            raise RolloutRefused(f"rollout plan.steps[{i}].percent: {step.percent:g}; steps rise strictly within (0, 100]")
        steps.append(step)
    approval = raw.get("require_approval", False)
    if not isinstance(approval, bool):
        raise RolloutRefused(f"rollout plan.require_approval: {approval!r} is not true/false")
    plan = Plan(version, _number(sh, "min_samples", Plan.shadow_min_samples, "shadow", integer=True),
                _number(sh, "min_seconds", Plan.shadow_min_seconds, "shadow"), tuple(steps), approval)
    if canary is None:
        if shadow != version:
            raise RolloutRefused(f"rollout plan: with no canary the file is in the plan's shadow phase: shadow must be "
                                 f"{version} (is {shadow})")
    elif canary.version != version or plan.step_index(canary.percent) is None:
        raise RolloutRefused(f"rollout plan: canary {canary.version} at {canary.percent:g}% is not a step of the plan "
                             f"(version {version}, steps {[s.percent for s in steps]})")
    return plan


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
