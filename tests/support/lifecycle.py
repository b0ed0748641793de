"""The model lifecycle's test set-up: a Triton repository holding the classifier only, laid out from the build
into a tmp dir (the build is never modified), with version 1 (the build's) registered as champion in a tmp MLflow
registry. Skips without a build -- fails under CI, where a missing build is the bug."""

from __future__ import annotations

from pathlib import Path

from model_repository.lifecycle import versions
from model_repository.lifecycle.registry import Registry
from tests.support.requirements import require


def classifier_repository(build_dir: Path, root: Path, purpose: str) -> tuple[Path, Path, Registry]:
    """(repository, lifecycle dir, registry) under ``root``."""
    manifest = build_dir / "models" / "intent_classifier" / "manifest.json"
    require("build", manifest.is_file(), f"{purpose} needs the built classifier ({manifest})")
    repo, life = root / "triton", root / "life"
    versions.lay_out(build_dir, repo)
    registry = Registry(life)
    versions.register_baseline(build_dir, repo, registry)
    return repo, life, registry
