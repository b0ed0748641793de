"""``pytest benchmarks/micro --benchmark-only``: one pytest-benchmark per hot piece (``hot_paths.py``) on the
built catalog (``.build/index/catalog.sqlite``; skipped without it). Reported, never asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import common
from benchmarks.micro.hot_paths import CASE_NAMES, cases

CATALOG = common.DEFAULT_BUILD_DIR / "index" / "catalog.sqlite"


@pytest.fixture(scope="module")
def hot_cases():
    if not Path(CATALOG).is_file():
        pytest.skip(f"needs the built catalog {CATALOG} (python -m model_repository build)")
    from server.retrieval.store import CatalogStore

    store = CatalogStore(CATALOG)
    yield cases(store)
    store.close()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hot_path(benchmark, hot_cases, name):
    benchmark(hot_cases[name])
