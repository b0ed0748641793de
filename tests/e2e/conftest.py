"""L1 fixtures: the real tritonserver on the built CPU repository (built on demand; cached by input hash)."""

import pytest

from model_repository.build import DEFAULT_BUILD_DIR, Builder
from server.triton_runtime import TritonServer


@pytest.fixture(scope="session")
def built_repo():
    repo = DEFAULT_BUILD_DIR / "triton" / "cpu"
    if not (DEFAULT_BUILD_DIR / "reports" / "summary.json").exists():
        Builder().build_all()
    return repo


@pytest.fixture(scope="session")
def triton(built_repo):
    with TritonServer(built_repo) as server:
        yield server
