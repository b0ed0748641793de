"""tests/support/requirements.py: a missing promised dependency skips on a developer's machine and fails under CI;
the project's own code is never import-or-skipped."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support import requirements
from tests.support.requirements import import_or_require, needs, require

pytestmark = pytest.mark.L0

pytest_plugins = ["pytester"]

SWITCHES = ("CI", "MANGAASSIST_REQUIRE_ALL", "MANGAASSIST_REQUIRE_MILVUS")


@pytest.fixture
def local(monkeypatch):
    for var in SWITCHES:
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_available_is_a_no_op(local):
    local.setenv("CI", "true")
    require("openssl", True, "present")  # neither skips nor fails


def test_missing_skips_locally(local):
    with pytest.raises(pytest.skip.Exception, match="needs openssl"):
        require("openssl", False, "needs openssl")


@pytest.mark.parametrize("var, value", [("CI", "true"), ("CI", "1"), ("MANGAASSIST_REQUIRE_ALL", "1")])
def test_missing_fails_under_ci(local, var, value):
    local.setenv(var, value)
    with pytest.raises(pytest.fail.Exception, match="openssl is missing, and set-up promises it"):
        require("openssl", False, "needs openssl")


@pytest.mark.parametrize("value", ["", "0", "false"])
def test_ci_switched_off_still_skips(local, value):
    local.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception):
        require("openssl", False, "needs openssl")


def test_a_dependency_switch_is_strict_for_that_dependency_only(local):
    local.setenv("MANGAASSIST_REQUIRE_MILVUS", "1")
    with pytest.raises(pytest.fail.Exception):
        require("milvus-lite", False, "Milvus Lite did not start")
    with pytest.raises(pytest.skip.Exception):
        require("openssl", False, "needs openssl")


def test_an_unpromised_name_is_refused(local):
    with pytest.raises(ValueError, match="not a promised dependency"):
        require("nvidia-driver", False, "a GPU")
    with pytest.raises(ValueError, match="not a promised dependency"):
        needs("nvidia-driver", False, "a GPU")


def test_import_or_require_refuses_the_projects_own_code(local):
    for own in ("server.stages.rules", "clients.sdk", "model_repository.build", "benchmarks.common"):
        with pytest.raises(ValueError, match="import it plainly"):
            import_or_require(own, "build")


def test_import_or_require_imports_skips_and_fails(local):
    assert import_or_require("json", "minilm-tokenizer").dumps([]) == "[]"
    with pytest.raises(pytest.skip.Exception, match="cannot import no_such_module_here"):
        import_or_require("no_such_module_here", "minilm-tokenizer")
    local.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="minilm-tokenizer is missing"):
        import_or_require("no_such_module_here", "minilm-tokenizer")


def test_every_promise_says_where_it_is_kept():
    assert all(where for where in requirements.PROMISED.values())
    assert set(requirements.SWITCHES) <= set(requirements.PROMISED)


@pytest.mark.parametrize("ci, outcome", [(None, {"skipped": 2}), ("true", {"errors": 2})])
def test_the_needs_mark_and_a_module_level_require_in_a_real_run(pytester, local, ci, outcome):
    """Through pytest itself: the ``needs`` mark (checked by tests/conftest.py's set-up hook, before the
    test's fixtures) and a module-level ``require`` skip without CI and fail with it."""
    if ci:
        local.setenv("CI", ci)
    pytester.makeconftest((_repo_root() / "tests" / "conftest.py").read_text())  # the suite's own hook
    pytester.makepyfile(test_marked=textwrap.dedent("""
        import pytest
        from tests.support.requirements import needs

        @pytest.fixture
        def expensive():
            raise AssertionError("set up before the requirement was checked")

        @needs("grpcurl", False, "grpcurl is not installed")
        def test_marked(expensive):
            pass
    """), test_module_level=textwrap.dedent("""
        from tests.support.requirements import require

        require("openssl", False, "needs openssl", module=True)

        def test_never_runs():
            pass
    """))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--continue-on-collection-errors", "-o", "pythonpath=" + str(_repo_root()))
    counts = result.parseoutcomes()
    assert counts == outcome, counts
    if ci:  # the module-level one is a collection error, the marked one an error at set-up: neither skipped
        assert "grpcurl is missing, and set-up promises it" in result.stdout.str()
        assert "openssl is missing, and set-up promises it" in result.stdout.str()


def _repo_root() -> Path:
    return Path(requirements.__file__).resolve().parents[2]
