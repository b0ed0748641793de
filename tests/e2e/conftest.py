"""L1 fixtures: the real tritonserver on the built CPU repository (built on demand; cached by input hash).

``MANGAASSIST_BUILD_DIR`` (the service's own build-dir setting) points the tests at another build directory.
"""

import os
from pathlib import Path

import pytest

from model_repository.build import DEFAULT_BUILD_DIR, Builder
from server.triton_runtime import TritonServer

BUILD_DIR = Path(os.environ.get("MANGAASSIST_BUILD_DIR", DEFAULT_BUILD_DIR))


@pytest.fixture(scope="session")
def built_repo():
    repo = BUILD_DIR / "triton" / "cpu"
    if not (BUILD_DIR / "reports" / "summary.json").exists():
        Builder(BUILD_DIR).build_all()
    return repo


@pytest.fixture(scope="session")
def triton(built_repo):
    with TritonServer(built_repo) as server:
        yield server
