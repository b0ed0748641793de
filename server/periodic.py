"""The service's periodic jobs' base: ``run_once()`` every ``interval_s`` on the service's loop, stopped at drain.

Generic (no settings, no traffic log): the drift, trigger and label-queue jobs (server/drift/), the Triton cost
monitor and the leased wrapper (server/traffic/), and the rollout schedule (server/rollout/schedule.py) subclass it;
server/traffic/monitors.py ``start_monitors`` wires the traffic-log ones."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


class PeriodicJob:
    """``run_once()`` every ``interval_s`` on the service's loop (first run at once with ``run_first``); a failed
    run is logged and the next one retries. ``start()`` / ``await stop()`` (the drain stops it)."""

    interval_s: float = 60.0
    run_first: bool = False
    _task: asyncio.Task[None] | None = None

    async def run_once(self) -> Any:
        raise NotImplementedError

    def on_failure(self, err: Exception) -> None:
        log.warning("%s run failed: %r", type(self).__name__, err)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=type(self).__name__)

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Cancel the loop and wait for it -- bounded: a cancellation that a body in flight absorbs (an
        ``asyncio.wait_for`` finishing at the same moment) is repeated until the task ends, at most ``timeout_s``."""
        task, self._task = self._task, None
        if task is None:
            return
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not task.done() and asyncio.get_running_loop().time() < deadline:
            task.cancel()
            await asyncio.wait({task}, timeout=0.1)
        if task.done():
            await asyncio.gather(task, return_exceptions=True)
        else:
            log.warning("%s: the periodic job did not stop within %.0f s", type(self).__name__, timeout_s)

    async def _loop(self) -> None:
        if not self.run_first:
            await asyncio.sleep(self.interval_s)
        while True:
            try:
                await self.run_once()
            except Exception as err:  # noqa: BLE001 -- the last gauges stay; the next run retries
                self.on_failure(err)
            await asyncio.sleep(self.interval_s)
