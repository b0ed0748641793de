"""Small asyncio helpers for the request path."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable


async def concurrently(*aws: Awaitable[Any]) -> list[Any]:
    """Run awaitables side by side; return their results in order.

    Unlike a bare ``asyncio.gather``, the first failure cancels the siblings (and waits for them), so no
    model call outlives the request; and unlike ``TaskGroup`` the original exception propagates as itself,
    not wrapped in an ``ExceptionGroup``. Cancelling the caller cancels every child.
    """
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
