"""Layering a newcomer can see: ``clients/`` never imports ``server/`` (the service runs with ``python -m
server``); the build side (``model_repository/``) imports from ``server/`` only the leaves listed below, each
for a stated reason, and through them nothing else of the service; ``server/`` builds nothing (index,
catalog and the rule report are built by ``model_repository/``); and the store's identifier shapes (ASIN,
order id) are written only in ``server/ids.py``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.L0

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports, at any depth (function-level imports too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_clients_import_nothing_from_server():
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / "clients").rglob("*.py"))
        for line, module in _imports(path)
        if module == "server" or module.startswith("server.")
    ]
    assert not found, found


#: A regex that spells an ASIN (``B0`` + 8) or an order id (``MA`` + 8 digits) instead of importing server/ids.py.
_RESTATED_ID = re.compile(r"B0\[A-Z0-9\]|MA(?:-\??|\[[^\]]*\]\??)?\(?\\d\{8\}", re.IGNORECASE)


def test_identifier_patterns_live_in_server_ids():
    found = []
    for path in sorted((ROOT / "server").rglob("*.py")):
        if path == ROOT / "server" / "ids.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _RESTATED_ID.search(node.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}")
    assert not found, f"use server/ids.py's patterns: {found}"


#: What the build side (``model_repository/``) may import from ``server/``, and why. Each is a leaf: it and
#: what it imports from server/ in turn (the closure, checked below) hold no service state -- no gRPC, no
#: settings, no stages or backends. The service's own modules stay out of the build.
BUILD_SIDE_IMPORTS: dict[str, str] = {
    # The index and the catalog: written by the build, read by the service, one definition of the format.
    "server.retrieval.base": "Chunk: the record the index stores and the service returns",
    "server.retrieval.faiss_index": "FaissIndex.save/load: the index's files, written and read by one class",
    "server.retrieval.milvus_index": "MilvusIndex: the same for the Milvus backend",
    "server.retrieval.index_loader": "MANIFEST + load_index: an up-to-date index is reused only if the service opens it",
    "server.ids": "the catalog writer validates ASIN / order-id shapes, defined once in server/ids.py",
    # The build embeds through the served models.
    "server.triton_runtime": "the index step embeds chunks on a real tritonserver (the served embedder + "
    "adapter, so chunk and query vectors come from the same models); the launcher is standard-library only",
    # The build report measures a service component.
    "server.stages.rules": "rule_report.py measures the rule fast path: it imports match, the thing measured",
    # Train/serve parity: a model is trained or checked on exactly the input the service builds.
    "server.retrieval.query": "the classifier trains on the message + English glosses the service sends (expand)",
    "server.hallucination.facts": "the scorer trains on the source/claim texts the service scores",
    "server.llm.prompts": "the LLM export is measured on the service's real tier prompt",
    # The model lifecycle: one definition of each file/record both sides read or write.
    "server.drift.labels": "the labelling queue's formats: label-export writes Label Studio tasks, `mangaassist "
    "retrain` (lifecycle/flywheel.py) reads the labelled export back -- one reader for both",
    "server.drift.reversal": "the written reversal triggers: a model card (lifecycle/cards.py) states the ones that "
    "would undo a version, the service's trigger job evaluates the same table",
    "server.rollout.config": "the rollout file: written by `mangaassist model` (lifecycle/cli.py), read by the service",
    "server.rollout.gate_records": "the registry's read side: what may answer customers, checked by the service "
    "before a rollout and by the registry before a promotion (MLflow only)",
    "server.intents": "datagen/golden/training.intent take the label order through it (a re-export of "
    "contracts/models.py); pointing them at the contract changes those steps' cache keys (code bytes) "
    "and retrains the classifier, so it waits for a change that rebuilds them anyway",
}
#: Reached only through the modules above (never imported by model_repository/ itself).
BUILD_SIDE_TRANSITIVE: dict[str, str] = {
    "server": "the package (empty __init__)",
    "server.retrieval": "the package (empty __init__)",
    "server.stages": "the package (empty __init__)",
    "server.llm": "the package (empty __init__)",
    "server.rollout": "the package (docstring only)",
    "server.drift": "the package (docstring only)",
    "server.errors": "the rollout file's RolloutRefused (the error hierarchy imports nothing)",
    "server.retrieval._compat": "milvus_index's pkg_resources shim (standard library only)",
    "server.llm.answer_format": "prompts' answer format (imports server.ids only)",
}
#: Known leaks: a package whose ``__init__`` imports service modules, so importing a leaf inside it loads them.
#: Fix the package, then delete the entry (the test fails while an entry no longer leaks).
BUILD_SIDE_KNOWN_LEAKS: dict[str, str] = {
    "server.hallucination": "its __init__ imports the scorer and the worker (settings, metrics, telemetry) eagerly, "
    "so training/hallucination.py importing server.hallucination.facts loads them; a lazy __init__ (PEP 562) ends it",
}


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported_modules(path: Path, top: str) -> set[str]:
    """The ``top`` package's modules ``path`` imports (``from top.x import y`` counts ``top.x.y`` when that
    is a module, so ``from model_repository import contract`` is ``model_repository.contract``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if (n == top or n.startswith(f"{top}.")) and _module_file(n)}
    return found


def _server_imports(path: Path) -> set[str]:
    return _imported_modules(path, "server")


def _closure(modules: set[str], stop: set[str] = frozenset()) -> set[str]:
    """``modules``, the packages that import them (``server.a`` for ``server.a.b``) and everything they import
    from server/, transitively; ``stop`` modules are listed but not followed."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        if module not in stop:
            todo += sorted(_server_imports(_module_file(module)))
    return seen


def _build_side_imports() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "model_repository").rglob("*.py")):
        for module in _server_imports(path):
            found.setdefault(module, []).append(str(path.relative_to(ROOT)))
    return found


def test_build_side_imports_only_the_listed_server_leaves():
    found = _build_side_imports()
    unlisted = {m: files for m, files in found.items() if m not in BUILD_SIDE_IMPORTS}
    assert not unlisted, f"model_repository/ imports server modules not in BUILD_SIDE_IMPORTS: {unlisted}"
    stale = set(BUILD_SIDE_IMPORTS) - set(found)
    assert not stale, f"listed in BUILD_SIDE_IMPORTS but no longer imported (drop them): {sorted(stale)}"


def test_build_side_reaches_no_service_module_through_its_leaves():
    allowed = set(BUILD_SIDE_IMPORTS) | set(BUILD_SIDE_TRANSITIVE)
    reached = _closure(set(_build_side_imports()), stop=set(BUILD_SIDE_KNOWN_LEAKS))
    assert not reached - allowed - set(BUILD_SIDE_KNOWN_LEAKS), sorted(reached - allowed - set(BUILD_SIDE_KNOWN_LEAKS))
    for package, why in BUILD_SIDE_KNOWN_LEAKS.items():
        assert _closure({package}) - allowed - {package}, f"{package} no longer leaks ({why}): drop it from the list"


def test_server_builds_nothing():
    """The service only reads what the build wrote: no index building, no catalog writing in server/."""
    assert not (ROOT / "server" / "retrieval" / "index_builder.py").exists()
    assert not (ROOT / "server" / "retrieval" / "chunking.py").exists()
    leaves = {"model_repository", "model_repository.contract", "model_repository.catalog_schema"}
    found = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / "server").rglob("*.py"))
        for module in sorted(_imported_modules(path, "model_repository") - leaves)
    ]
    assert not found, f"server/ imports only the leaf contracts of model_repository/: {found}"
    store = (ROOT / "server" / "retrieval" / "store.py").read_text(encoding="utf-8")
    assert "CREATE TABLE" not in store and "INSERT INTO" not in store, "the catalog is written by the build"
