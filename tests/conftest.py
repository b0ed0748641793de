"""Suite-wide: the ``needs`` mark (tests/support/requirements.py) -- skip locally, fail under CI."""

from __future__ import annotations

import pytest

from tests.support.requirements import require


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(name, available, why): a promised dependency (tests/support/requirements.py)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("needs"):
        require(*mark.args, **mark.kwargs)
