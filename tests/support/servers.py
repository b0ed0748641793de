"""Test helper shared by the integration (fake backend) and e2e (real Triton) service fixtures."""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator, Awaitable, Callable

from server.app import RunningServer


@contextlib.asynccontextmanager
async def drained_after(start: Callable[..., Awaitable[RunningServer]]) -> AsyncIterator[Callable[..., Awaitable[RunningServer]]]:
    """Wrap ``start(...) -> RunningServer`` as a factory; every server it started is drained on exit."""
    started: list[RunningServer] = []

    async def factory(*args: Any, **kwargs: Any) -> RunningServer:
        running = await start(*args, **kwargs)
        started.append(running)
        return running

    try:
        yield factory
    finally:
        for running in started:
            await running.drain(grace_s=0)
