"""The canary guards' and shadow's counters, shared by every replica (``state.backend: redis``).

In one process the guards count what this process answered (:class:`~server.rollout.controller.VersionStats`) and
the feedback it recorded. In a cluster every replica answers a share of the canary's sessions and a Feedback lands
on whichever replica the balancer picks, so each replica's guard would judge a third of the evidence and a canary
the cluster as a whole has condemned would never be rolled back. Here the counts live in Redis hashes::

    <prefix>rollout:guard:<config id>:<version>   answers, errors, low_confidence, thumbs_up, thumbs_down, escalated
    <prefix>rollout:shadow:<config id>:<version>  calls, agree, errors, dropped

incremented atomically (``HINCRBY`` in one MULTI with the read of the versions the guard compares, so every
increment returns the cluster's totals at once), expiring ``ttl_s`` after the last increment. ``config id`` is a
hash of the rollout's model, stable and canary: the replicas running the same rollout file count into the same
hashes, and a new canary (or the same one started again after a rollback, whose hashes the rollback deleted) starts
from zero -- as the in-process counters restart when the canary changes. Latencies (classify p99, shadow p50/p99)
stay per replica: a percentile does not add up across replicas.

Every call is bounded by ``timeout_ms``; Redis down loses the increments of that moment (counted in
``unavailable``) and the guards judge the last totals they read -- a chat never waits on it (the increments run
off the request path)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any, Iterable, Mapping

log = logging.getLogger(__name__)

GUARD_FIELDS = ("answers", "errors", "low_confidence", "thumbs_up", "thumbs_down", "escalated")
SHADOW_FIELDS = ("calls", "agree", "errors", "dropped")


def config_id(model: str, stable: str, canary: Mapping[str, Any] | None) -> str:
    """The same id on every replica running the same rollout (the shadow version is not part of it: changing only
    the shadow leaves the canary's evidence in place, as in one process)."""
    blob = json.dumps({"model": model, "stable": stable, "canary": dict(canary) if canary else None}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class SharedCounters:
    def __init__(self, url: str, *, key_prefix: str = "mangaassist:", ttl_s: float = 7 * 86400.0,
                 timeout_ms: float = 50.0, client: Any = None) -> None:
        import redis.asyncio as aioredis

        self.prefix = key_prefix + "rollout:"
        self.ttl_ms = max(1000, int(ttl_s * 1000))
        self.timeout_s = timeout_ms / 1000.0
        self.unavailable = 0  # Redis calls that failed or timed out
        self._redis = client or aioredis.from_url(url, socket_timeout=self.timeout_s,
                                                  socket_connect_timeout=self.timeout_s, retry_on_timeout=False)

    def key(self, kind: str, cid: str, version: str) -> str:
        return f"{self.prefix}{kind}:{cid}:{version}"

    async def add(self, kind: str, cid: str, version: str, fields: Mapping[str, int],
                  read: Iterable[str] = ()) -> dict[str, dict[str, int]] | None:
        """Add ``fields`` to ``version``'s counts and return the cluster's counts of the ``read`` versions
        (None: Redis unavailable, nothing added)."""
        read = list(read)
        key = self.key(kind, cid, version)
        pipe = self._redis.pipeline(transaction=True)
        for name, n in fields.items():
            if n:
                pipe.hincrby(key, name, int(n))
        pipe.pexpire(key, self.ttl_ms)
        for v in read:
            pipe.hgetall(self.key(kind, cid, v))
        out = await self._bounded(pipe.execute())
        if out is None:
            return None
        return {v: _ints(raw) for v, raw in zip(read, out[len(out) - len(read):])}

    async def read(self, kind: str, cid: str, versions: Iterable[str]) -> dict[str, dict[str, int]] | None:
        versions = list(versions)
        pipe = self._redis.pipeline(transaction=False)
        for v in versions:
            pipe.hgetall(self.key(kind, cid, v))
        out = await self._bounded(pipe.execute())
        return None if out is None else {v: _ints(raw) for v, raw in zip(versions, out)}

    async def clear(self, cid: str, versions: Iterable[str]) -> None:
        """A rolled-back canary's evidence: the same canary started again later starts from zero."""
        keys = [self.key(kind, cid, v) for kind in ("guard", "shadow") for v in versions]
        if keys:
            await self._bounded(self._redis.delete(*keys))

    async def _bounded(self, call: Any) -> Any:
        try:
            return await asyncio.wait_for(call, self.timeout_s)
        except Exception as err:  # noqa: BLE001 -- RedisError, OSError, TimeoutError: an outage, never a chat's failure
            self.unavailable += 1
            log.warning("rollout counters: Redis unavailable (%s)", type(err).__name__)
            return None

    async def aclose(self) -> None:
        await self._redis.aclose()


def _ints(raw: Mapping[Any, Any]) -> dict[str, int]:
    return {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in (raw or {}).items()}
