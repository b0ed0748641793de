"""Reading a server's counters after the responses they count.

Triton records a request's statistics (``get_inference_statistics``, the ``nv_inference_*`` Prometheus counters)
when the request is *released*, which for a composing model of an ensemble -- and under load for any model -- can
come after the response has already reached the client. An assertion on a counter read right after the last
response therefore races the server. ``settle`` polls the counter until it reaches the value the test expects
(bounded), and returns what it read last, so the test's own assertion still decides -- and still fails when the
property does not hold (the count never arrives, or arrives with the wrong shape).
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def settle(read: Callable[[], T], until: Callable[[T], bool], *, timeout_s: float = 15.0, interval_s: float = 0.05) -> T:
    """``read()`` again until ``until(value)`` holds or ``timeout_s`` has passed; the last value read."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while not until(value) and time.monotonic() < deadline:
        time.sleep(interval_s)
        value = read()
    return value


async def settle_async(read: Callable[[], T], until: Callable[[T], bool], *, timeout_s: float = 15.0,
                       interval_s: float = 0.05) -> T:
    """:func:`settle` for a blocking ``read`` inside a test's event loop (each read runs in a thread)."""
    deadline = time.monotonic() + timeout_s
    value = await asyncio.to_thread(read)
    while not until(value) and time.monotonic() < deadline:
        await asyncio.sleep(interval_s)
        value = await asyncio.to_thread(read)
    return value
