"""Content-addressed build cache: a step's outputs are reused when the hash of its inputs is unchanged.

A step's key hashes its name, its config, the bytes of its input files and the source of the code
that produces it. The key is stored in ``<out_dir>/manifest.json`` once the step completes, so an
interrupted step is simply redone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in paths:
        h.update(str(p.relative_to(path) if path.is_dir() else p.name).encode())
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def step_key(name: str, *, config: dict[str, Any], inputs: Iterable[Path] = (), code: Iterable[Path] = ()) -> str:
    h = hashlib.sha256(name.encode())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    for p in inputs:
        h.update(file_digest(Path(p)).encode())
    for p in code:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


def cached_step(
    out_dir: Path, key: str, build: Callable[[Path], dict[str, Any]], *, label: str, manifest_name: str = "manifest.json"
) -> dict[str, Any]:
    """Run ``build(out_dir)`` unless ``out_dir`` already holds the outputs for ``key``.

    ``build`` returns a JSON-able report which is stored in the manifest and returned either way.
    """
    manifest = out_dir / manifest_name
    if manifest.exists():
        data = json.loads(manifest.read_text())
        if data.get("key") == key:
            print(f"[build] {label}: cached ({out_dir}, key {key})", flush=True)
            return data["report"]
    print(f"[build] {label}: building (key {key}) ...", flush=True)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    report = build(out_dir)
    manifest.write_text(json.dumps({"key": key, "report": report}, indent=2, default=str))
    return report
