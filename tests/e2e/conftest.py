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
def triton(built_repo, tmp_path_factory):
    """The session's tritonserver. Its trace file is set but tracing is off (level OFF costs nothing); a
    test turns it on at run time (``update_trace_settings``) and reads ``server.trace_dir``."""
    trace_dir = tmp_path_factory.mktemp("triton_trace")
    args = (f"--trace-config=triton,file={trace_dir / 'trace.json'}", "--trace-config=level=OFF", "--trace-config=rate=1")
    with TritonServer(built_repo, extra_args=args) as server:
        server.trace_dir = trace_dir
        yield server
