"""Layering a newcomer can see: which top-level folder may import which, stated once as a table.

    contracts/         the formats every plane shares (model contract, catalog layout): imports nothing of ours
    server/            the service (``python -m server``): the contracts only
    clients/           the client SDK and the chat CLI (``pip install mangaassist``): the contracts only
    model_repository/  the offline plane: the build (data, training, export, index) and the model lifecycle
                       (registry, versions, gate, eval harness, rollout files, drift reports, flywheel, the
                       operator CLI) -- it trains on exactly what the service computes and drives the service
                       through the SDK, so it may import server/ and clients/
    benchmarks/        measurements: anything below it
    tests/             anything

Every import counts, at any depth (function-level imports too), and so does a ``[sys.executable, "-m", X]``
subprocess: running a module is depending on it. The table has no cycle, so no two folders depend on each other.
The store's identifier shapes (ASIN, order id) are written only in ``server/ids.py``."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.L0

ROOT = Path(__file__).resolve().parents[2]

#: folder -> the project folders it may import (or run with ``python -m``).
ALLOWED: dict[str, set[str]] = {
    "contracts": set(),
    "server": {"contracts"},
    "clients": {"contracts"},
    "model_repository": {"contracts", "server", "clients"},
    "benchmarks": {"contracts", "server", "clients", "model_repository"},
    "deploy": {"contracts", "server"},  # helm/settings_schema.py renders the chart schema from server/settings.py
    "proto": set(),  # the generated mangaassist.v1 stubs
    "scripts": {"contracts", "server", "clients", "model_repository", "benchmarks"},
    "tests": {"contracts", "server", "clients", "model_repository", "benchmarks", "deploy", "proto", "scripts"},
}
FOLDERS = set(ALLOWED)


def _python_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _dependencies(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every module ``path`` imports at any depth, and every ``-m MODULE`` it runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, (ast.List, ast.Tuple)):
            items = node.elts
            for a, b in zip(items, items[1:]):
                if isinstance(a, ast.Constant) and a.value == "-m" and isinstance(b, ast.Constant) and isinstance(b.value, str):
                    found.append((node.lineno, b.value))
    return found


def _arrows() -> dict[tuple[str, str], list[str]]:
    """(from folder, to folder) -> where, for every dependency between two different project folders."""
    arrows: dict[tuple[str, str], list[str]] = {}
    for folder in sorted(FOLDERS):
        for path in _python_files(folder):
            for line, module in _dependencies(path):
                target = module.split(".")[0]
                if target in FOLDERS and target != folder:
                    arrows.setdefault((folder, target), []).append(f"{path.relative_to(ROOT)}:{line} {module}")
    return arrows


def test_every_top_level_python_folder_is_in_the_table():
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".") and _python_files(p.name)}
    folders -= {"var"} | {p.name for p in ROOT.glob("*.egg-info")}
    assert folders <= FOLDERS, f"a new top-level folder: state what it may import in ALLOWED: {sorted(folders - FOLDERS)}"


def test_folders_import_only_what_the_table_allows():
    bad = {f"{a} -> {b}": where[:5] for (a, b), where in _arrows().items() if b not in ALLOWED[a]}
    assert not bad, f"imports the layering table (ALLOWED) does not allow: {bad}"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, path + [node])):
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def test_no_folder_cycle():
    assert _cycle(ALLOWED) is None, f"the table itself has a cycle: {_cycle(ALLOWED)}"
    graph: dict[str, set[str]] = {}
    for a, b in _arrows():
        graph.setdefault(a, set()).add(b)
    assert _cycle(graph) is None, f"folders that depend on each other: {_cycle(graph)}"


def test_contracts_import_the_standard_library_only():
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in _python_files("contracts")
        for line, module in _dependencies(path)
        if module.split(".")[0] not in sys.stdlib_module_names | {"__future__", "contracts"}
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


def test_server_builds_nothing():
    """The service only reads what the build wrote: no index building, no catalog writing in server/ (and, by the
    table, no import of model_repository/)."""
    assert not (ROOT / "server" / "retrieval" / "index_builder.py").exists()
    assert not (ROOT / "server" / "retrieval" / "chunking.py").exists()
    store = (ROOT / "server" / "retrieval" / "store.py").read_text(encoding="utf-8")
    assert "CREATE TABLE" not in store and "INSERT INTO" not in store, "the catalog is written by the build"


def test_one_gate_module():
    """Every threshold a model or a running service is held to lives in one module (the golden-set gate and the
    model gate, holding the classifier to the same floors)."""
    gates = sorted(str(p.relative_to(ROOT)) for f in sorted(FOLDERS - {"tests"}) for p in _python_files(f) if p.name == "gate.py")
    assert gates == ["model_repository/lifecycle/gate.py"], gates
