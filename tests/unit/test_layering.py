"""Layering a newcomer can see: ``clients/`` never imports ``server/`` (the service runs with ``python -m
server``), and the store's identifier shapes (ASIN, order id) are written only in ``server/ids.py``."""

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
