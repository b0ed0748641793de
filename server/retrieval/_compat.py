"""Compatibility shims for third-party packages (kept in one place so they are easy to delete)."""

from __future__ import annotations

import importlib.metadata
import sys
import types


def ensure_pkg_resources() -> None:
    """Provide the two ``pkg_resources`` names that pymilvus 2.4 and milvus-lite 2.4 import.

    Both packages do ``from pkg_resources import DistributionNotFound, get_distribution`` only to read
    their own version. setuptools >= 81 no longer ships ``pkg_resources``, so on such an environment the
    import of pymilvus fails. When the real module is importable it is used untouched; otherwise a
    minimal stand-in backed by :mod:`importlib.metadata` is registered. Delete this once pymilvus >= 2.5
    (which uses importlib.metadata itself) is pinned.
    """
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        pass
    else:
        return

    class DistributionNotFound(Exception):
        pass

    class _Distribution:
        def __init__(self, name: str, version: str) -> None:
            self.project_name = name
            self.version = version

    def get_distribution(name: str) -> _Distribution:
        try:
            return _Distribution(name, importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError as err:
            raise DistributionNotFound(name) from err

    shim = types.ModuleType("pkg_resources")
    shim.__doc__ = "Minimal stand-in installed by server.retrieval._compat (setuptools >= 81 has none)."
    shim.DistributionNotFound = DistributionNotFound  # type: ignore[attr-defined]
    shim.get_distribution = get_distribution  # type: ignore[attr-defined]
    sys.modules.setdefault("pkg_resources", shim)
