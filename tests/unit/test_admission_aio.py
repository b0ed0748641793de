from __future__ import annotations

import asyncio

import pytest

from server.admission import Admission
from server.aio import concurrently
from server.errors import Overloaded, Unavailable
from server.metrics import Metrics

pytestmark = pytest.mark.L0


def test_admission_fails_fast_and_releases():
    metrics = Metrics()
    admission = Admission(2, metrics)
    with admission.slot(), admission.slot():
        assert admission.in_flight == 2
        with pytest.raises(Overloaded):
            with admission.slot():
                pass
    assert admission.in_flight == 0
    assert metrics.registry.get_sample_value("mangaassist_shed_total") == 1
    with pytest.raises(RuntimeError):
        with admission.slot():
            raise RuntimeError("boom")
    assert admission.in_flight == 0
    admission.draining = True
    with pytest.raises(Unavailable) as err:
        with admission.slot():
            pass
    assert err.value.reason == "draining"


async def test_concurrently_runs_side_by_side_and_cancels_siblings_on_failure():
    cancelled = []

    async def slow(name):
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    async def boom():
        await asyncio.sleep(0.01)
        raise ValueError("boom")

    assert await concurrently(asyncio.sleep(0.01, "a"), asyncio.sleep(0.02, "b")) == ["a", "b"]
    with pytest.raises(ValueError, match="boom"):  # the original exception, not an ExceptionGroup
        await concurrently(slow("s1"), boom(), slow("s2"))
    assert sorted(cancelled) == ["s1", "s2"]
