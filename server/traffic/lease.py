"""One replica at a time runs the cluster's periodic jobs (``state.backend: redis``): a lease in Redis.

The drift monitor, the reversal triggers and the weekly label-queue export read the one shared traffic log; run on
every replica they would compute the same thing N times and the label queue would be exported N times a week. Each
replica wraps them in a :class:`LeasedJob`:

* **The lease** ``<prefix>lease:<job>``: ``SET key token NX PX ttl`` takes it (the token names this replica and a
  random part), a compare-and-``PEXPIRE`` script renews it every ``tick_s`` (``ttl_s / 3`` at most), a
  compare-and-``DEL`` script releases it at drain (so another replica takes over at its next tick, not after the
  ttl). A replica that dies without draining blocks the job for ``ttl_s`` at most (30 s).
* **Once per period, cluster-wide**: the holder runs the job when ``interval_s`` has passed since the cluster's last
  run, ``<prefix>lease:<job>:last`` (Redis server time, so replicas' clocks do not matter) -- a new leader carries on
  the old one's schedule instead of running again at once.
* **A lost lease stops the job**: while the body runs the lease is renewed every ``tick_s``; a renewal that finds
  another token (or fails: Redis unreachable, so no replica can know it leads) cancels the run. Work already handed
  to a worker thread finishes its step, its result is dropped and the run is not recorded (the next leader repeats
  it). Redis down: nobody holds the lease and the jobs pause (logged); chats are not affected.

Why a lease and not a Kubernetes CronJob: the jobs are the service's own code with its live backend (the drift
job's golden probe classifies through the served model) and export gauges from a pod Prometheus scrapes; a CronJob
would need a second entrypoint, image wiring and its own metrics path. The lease keeps one deployment.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from typing import Any

from server.periodic import PeriodicJob

log = logging.getLogger(__name__)

RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class LeasedJob(PeriodicJob):
    """``job`` (a :class:`PeriodicJob`, not started itself) run by whichever replica holds its lease."""

    def __init__(self, job: PeriodicJob, url: str, *, name: str, key_prefix: str = "mangaassist:",
                 ttl_s: float | None = None, timeout_ms: float = 500.0, client: Any = None) -> None:
        import redis.asyncio as aioredis

        self.job, self.name = job, name
        self.interval_s, self.run_first = job.interval_s, job.run_first
        self.ttl_s = ttl_s if ttl_s is not None else min(30.0, max(0.3, 2 * job.interval_s))
        self.tick_s = min(self.ttl_s / 3, max(0.01, job.interval_s / 4))
        self.key = f"{key_prefix}lease:{name}"
        self.last_key = self.key + ":last"
        self.token = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(6)}"
        self.timeout_s = timeout_ms / 1000.0
        self.leading = False
        self.runs = 0  # bodies this replica ran to the end
        self.lost = 0  # runs stopped because the lease was lost
        self._redis = client or aioredis.from_url(url, socket_timeout=self.timeout_s,
                                                  socket_connect_timeout=self.timeout_s, retry_on_timeout=False)

    # -- the lease --
    async def _call(self, call: Any) -> Any:
        return await asyncio.wait_for(call, self.timeout_s)

    async def hold(self) -> bool:
        """Take the lease or renew ours; False when another replica holds it or Redis cannot say."""
        ttl_ms = max(1, int(self.ttl_s * 1000))
        try:
            held = bool(await self._call(self._redis.set(self.key, self.token, nx=True, px=ttl_ms))) or bool(
                await self._call(self._redis.eval(RENEW, 1, self.key, self.token, ttl_ms)))
        except Exception as err:  # noqa: BLE001 -- RedisError, OSError, TimeoutError
            held = False
            log.warning("job %s: lease unknown (Redis: %s); not running it", self.name, type(err).__name__)
        if held != self.leading:
            log.info("job %s: %s the lease (%s)", self.name, "took" if held else "lost", self.token)
        self.leading = held
        return held

    async def release(self) -> None:
        if not self.leading:
            return
        self.leading = False
        try:
            await self._call(self._redis.eval(RELEASE, 1, self.key, self.token))
        except Exception as err:  # noqa: BLE001 -- it expires after ttl_s anyway
            log.warning("job %s: could not release the lease (%s)", self.name, type(err).__name__)

    async def _now(self) -> float:
        sec, usec = await self._call(self._redis.time())
        return sec + usec / 1e6

    async def _due(self) -> float | None:
        """The run's start time (Redis clock) when the cluster's last run is ``interval_s`` old, else None."""
        now = await self._now()
        last = await self._call(self._redis.get(self.last_key))
        if last is None:
            if self.run_first:
                return now
            await self._call(self._redis.set(self.last_key, repr(now), nx=True, px=self._last_ttl_ms()))
            return None
        return now if now - float(last) >= self.interval_s else None

    def _last_ttl_ms(self) -> int:
        return max(1000, int((2 * self.interval_s + self.ttl_s) * 1000))

    # -- the loop --
    async def _loop(self) -> None:
        while True:
            try:
                if await self.hold():
                    started = await self._due()
                    if started is not None:
                        await self._run_leased(started)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 -- Redis trouble reading the schedule: next tick
                log.warning("job %s: %r", self.name, err)
            await asyncio.sleep(self.tick_s)

    async def _run_leased(self, started: float) -> None:
        body = asyncio.create_task(self.job.run_once(), name=f"{self.name}-leased")
        keeper = asyncio.create_task(self._keep(body))
        try:
            await body
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if keeper.done() and keeper.result() and not (current is not None and current.cancelling()):
                # the keeper cancelled the body (the lease went elsewhere) and nobody is stopping this loop: a stop()
                # that lands at the same moment must not be swallowed here, or the loop would never end
                self.lost += 1
                log.error("job %s: lease lost while running; the run was stopped", self.name)
                return
            body.cancel()
            raise
        except Exception as err:  # noqa: BLE001 -- a failed run is a run (PeriodicJob's rule): the next one retries
            self.job.on_failure(err)
        finally:
            keeper.cancel()
        self.runs += 1
        await self._call(self._redis.set(self.last_key, repr(started), px=self._last_ttl_ms()))

    async def _keep(self, body: asyncio.Task) -> bool:
        """Renew every tick while the body runs; True (and the body cancelled) when the lease is lost."""
        while not body.done():
            await asyncio.sleep(self.tick_s)
            if not body.done() and not await self.hold():
                body.cancel()
                return True
        return False

    async def stop(self) -> None:
        """At drain: stop, give the lease back (another replica takes over at its next tick) and close."""
        await super().stop()
        await self.release()
        await self._redis.aclose()

    @property
    def last(self) -> Any:
        return self.job.last if hasattr(self.job, "last") else None
