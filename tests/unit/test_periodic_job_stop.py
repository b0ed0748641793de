"""A drain must end every periodic job: ``PeriodicJob.stop`` repeats the cancellation until the loop has ended
(bounded). A single ``cancel()`` can be absorbed -- an ``asyncio.wait_for`` finishing at the moment it lands, or the
leased runner mistaking the stop for its keeper's cancel of a body (server/traffic/lease.py) -- and a drain that then
waited on the task would hang for ever (the cluster's periodic-jobs test hung 900 s once under load)."""

from __future__ import annotations

import asyncio

import pytest

from server.periodic import PeriodicJob

pytestmark = pytest.mark.L0


class AbsorbsOneCancel(PeriodicJob):
    interval_s = 0.01

    def __init__(self) -> None:
        self.absorbed = 0

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.sleep(self.interval_s)
            except asyncio.CancelledError:
                if self.absorbed == 0:  # what a cancellation swallowed in flight looks like from outside
                    self.absorbed += 1
                    asyncio.current_task().uncancel()
                    continue
                raise


async def test_stop_ends_a_loop_that_absorbed_the_first_cancellation():
    job = AbsorbsOneCancel()
    job.start()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(job.stop(timeout_s=5), 3)  # a hang here is the bug
    assert job.absorbed == 1 and job._task is None


async def test_stop_gives_up_after_its_bound_on_a_loop_that_never_ends():
    class Immortal(AbsorbsOneCancel):
        async def _loop(self) -> None:
            while True:
                try:
                    await asyncio.sleep(0.01)
                except asyncio.CancelledError:
                    asyncio.current_task().uncancel()

    job = Immortal()
    job.start()
    task = job._task
    await asyncio.wait_for(job.stop(timeout_s=0.3), 3)  # returns (warning logged) instead of hanging the drain
    assert not task.done()
    task.cancel()  # clean up: this loop absorbs every cancel, so it stays in the background until the loop closes
