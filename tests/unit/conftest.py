"""Shared unit-test fixtures: one real CatalogStore built from the generated data (seed 1234), built once."""

from __future__ import annotations

import pytest

from model_repository.datagen import generate_all
from model_repository.index.catalog import build_catalog
from server.retrieval.entities import EntityResolver
from server.retrieval.store import CatalogStore


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> CatalogStore:
    d = tmp_path_factory.mktemp("generated_store")
    generate_all(d, seed=1234)
    s = CatalogStore(
        build_catalog(d / "catalog.jsonl", d / "orders.jsonl", d / "catalog.sqlite", d / "series.jsonl", d / "policies.jsonl")
    )
    yield s
    s.close()


@pytest.fixture(scope="session")
def resolver(store) -> EntityResolver:
    return EntityResolver(store)
