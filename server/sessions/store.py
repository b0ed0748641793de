"""Session stores: the last ``max_turns`` turns of each session, forgotten ``ttl_s`` after the last one.

What a turn keeps is what a follow-up needs and nothing more: the message *as redacted by the input guardrail*
(never the raw text), the message with its references spelled out, the intent answered, the series / volume /
edition in play, the ASINs the answer showed, the order ids given, whether the answer asked for an order number,
the tier and the answer (both texts cut to ``max_turn_chars``).

* :class:`MemorySessionStore` -- a dict in this process, least recently used sessions dropped past
  ``max_sessions``. Lost on restart and not shared between pods: the embedded default only.
* :class:`RedisSessionStore` -- one Redis list per session (``RPUSH`` + ``LTRIM`` + ``EXPIRE`` in one
  transaction), through the ``redis`` asyncio client. Every call is bounded by ``timeout_ms``; a slow or
  unreachable Redis raises :class:`SessionUnavailable` and the caller degrades.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from server.errors import SessionUnavailable


@dataclass(frozen=True)
class Turn:
    message: str  # as redacted by the input guardrail
    resolved: str = ""  # the message with what it refers to spelled out ("" = the same)
    intent: str = ""
    series: str | None = None
    volume: int | None = None
    format: str | None = None
    asins: tuple[str, ...] = ()  # products the answer showed, in order
    order_ids: tuple[str, ...] = ()
    asked_order_id: bool = False  # the answer asked the customer for an order number
    tier: str = ""
    answer: str = ""
    at: float = field(default_factory=time.time)
    author: str | None = None  # the author of the product in play (server/sessions/state.py)
    attribute: str | None = None  # the attribute the turn asked about (author, pages, ...; server/stages/relation.py)
    relation: str = ""  # how the turn related to the ones before (server/stages/relation.py; "" = stood alone)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> "Turn":
        d = json.loads(raw)
        d["asins"], d["order_ids"] = tuple(d.get("asins") or ()), tuple(d.get("order_ids") or ())
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def clipped(self, max_chars: int) -> "Turn":
        cut = lambda text: text if len(text) <= max_chars else text[: max_chars - 1] + "\u2026"  # noqa: E731
        return Turn(**{**asdict(self), "message": cut(self.message), "resolved": cut(self.resolved),
                       "answer": cut(self.answer), "asins": self.asins, "order_ids": self.order_ids})


@dataclass(frozen=True)
class SessionView:
    """What a chat needs from the store before it is answered, read in one call (:meth:`SessionStore.begin`)."""

    limited: str | None = None  # None = admitted; else the empty bucket, "session" or "customer" (nothing read)
    blocked: bool = False  # the hallucination scorer blocked this session (on any pod)
    turns: tuple[Turn, ...] = ()  # the session's turns, oldest first


class SessionStore(Protocol):
    name: str

    async def begin(self, session_id: str, customer_id: str = "") -> SessionView:
        """One call per chat, before the answer: both rate-limit buckets (:meth:`allow`), the block flag and the
        turns. Redis: one round trip (one Lua script)."""

    async def allow(self, session_id: str, customer_id: str = "") -> str | None:
        """Take one token from the session's bucket (``rate_per_s``, up to ``burst``) and one from the customer's
        (``customer_rate_per_s``, up to ``customer_burst``) -- from both or neither. None = admitted, else the
        bucket that is empty: ``"session"`` or ``"customer"``. An empty id has no bucket."""

    async def history(self, session_id: str) -> list[Turn]:
        """The session's turns, oldest first ([] for an unknown or expired session)."""

    async def append(self, session_id: str, turn: Turn) -> None: ...

    async def block(self, session_id: str, ttl_s: float) -> None:
        """Refuse the session for ``ttl_s`` (the hallucination scorer's block; every pod sees it)."""

    async def is_blocked(self, session_id: str) -> bool: ...

    async def close(self) -> None: ...


class _RateLimits:
    """The two token buckets a chat takes from: its session's (``rate_per_s``, up to ``burst``) and its customer's
    (``customer_rate_per_s``, up to ``customer_burst``). A bucket with rate 0 or an empty id is not taken from."""

    rate_per_s: float
    burst: int
    customer_rate_per_s: float
    customer_burst: int

    def _active_buckets(self, session_id: str, customer_id: str, session_key: str,
                        customer_key: str) -> list[tuple[str, str, float, int]]:
        """(name, store key, rate, burst) of each bucket this chat takes from, the session's first."""
        return [(name, key, rate, burst) for name, owner, key, rate, burst in (
            ("session", session_id, session_key, self.rate_per_s, self.burst),
            ("customer", customer_id, customer_key, self.customer_rate_per_s, self.customer_burst),
        ) if rate > 0 and owner]


class MemorySessionStore(_RateLimits):
    name = "memory"

    def __init__(self, *, ttl_s: float = 1800.0, max_turns: int = 6, max_turn_chars: int = 600,
                 max_sessions: int = 100_000, rate_per_s: float = 0.0, burst: int = 20,
                 customer_rate_per_s: float = 0.0, customer_burst: int = 30, clock=time.monotonic) -> None:
        self.ttl_s, self.max_turns, self.max_turn_chars, self.max_sessions = ttl_s, max_turns, max_turn_chars, max_sessions
        self.rate_per_s, self.burst = rate_per_s, burst
        self.customer_rate_per_s, self.customer_burst = customer_rate_per_s, customer_burst
        self._clock = clock
        self._sessions: OrderedDict[str, tuple[float, list[Turn]]] = OrderedDict()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # session -> (tokens, at)
        self._blocked: OrderedDict[str, float] = OrderedDict()  # session -> until (clock)

    async def begin(self, session_id: str, customer_id: str = "") -> SessionView:
        limited = await self.allow(session_id, customer_id)
        if limited is not None or not session_id:
            return SessionView(limited)
        return SessionView(None, await self.is_blocked(session_id), tuple(await self.history(session_id)))

    async def allow(self, session_id: str, customer_id: str = "") -> str | None:
        now = self._clock()
        refilled = []
        buckets = self._active_buckets(session_id, customer_id, "s:" + session_id, "c:" + customer_id)
        for name, key, rate, burst in buckets:
            tokens, at = self._buckets.pop(key, (float(burst), now))
            refilled.append((name, key, min(float(burst), tokens + (now - at) * rate)))
        empty = next((name for name, _, tokens in refilled if tokens < 1.0), None)
        for _, key, tokens in refilled:
            self._buckets[key] = (tokens if empty else tokens - 1.0, now)
        while len(self._buckets) > self.max_sessions:
            self._buckets.popitem(last=False)
        return empty

    async def history(self, session_id: str) -> list[Turn]:
        entry = self._sessions.get(session_id)
        if entry is None:
            return []
        last, turns = entry
        if self._clock() - last > self.ttl_s:
            del self._sessions[session_id]
            return []
        self._sessions.move_to_end(session_id)
        return list(turns)

    async def append(self, session_id: str, turn: Turn) -> None:
        turns = (await self.history(session_id) + [turn.clipped(self.max_turn_chars)])[-self.max_turns:]
        now = self._clock()
        self._sessions[session_id] = (now, turns)
        self._sessions.move_to_end(session_id)
        # least recently used first: drop the expired ones at the front (the TTL bounds memory, not only reads),
        # then any beyond max_sessions
        while self._sessions:
            oldest, (last, _) = next(iter(self._sessions.items()))
            if now - last <= self.ttl_s and len(self._sessions) <= self.max_sessions:
                break
            del self._sessions[oldest]

    async def block(self, session_id: str, ttl_s: float) -> None:
        self._blocked.pop(session_id, None)
        self._blocked[session_id] = self._clock() + ttl_s
        while len(self._blocked) > self.max_sessions:
            self._blocked.popitem(last=False)

    async def is_blocked(self, session_id: str) -> bool:
        until = self._blocked.get(session_id)
        if until is not None and self._clock() >= until:
            del self._blocked[session_id]
            until = None
        return until is not None

    def __len__(self) -> int:
        return len(self._sessions)

    async def close(self) -> None:
        self._sessions.clear()


class RedisSessionStore(_RateLimits):
    name = "redis"

    def __init__(self, url: str, *, key_prefix: str = "mangaassist:session:", ttl_s: float = 1800.0, max_turns: int = 6,
                 max_turn_chars: int = 600, timeout_ms: float = 25.0, rate_per_s: float = 0.0, burst: int = 20,
                 customer_rate_per_s: float = 0.0, customer_burst: int = 30, client: Any = None) -> None:
        import redis.asyncio as aioredis

        self.prefix, self.ttl_s, self.max_turns, self.max_turn_chars = key_prefix, ttl_s, max_turns, max_turn_chars
        self.rate_per_s, self.burst = rate_per_s, burst
        self.customer_rate_per_s, self.customer_burst = customer_rate_per_s, customer_burst
        self.timeout_s = timeout_ms / 1000.0
        self._redis = client or aioredis.from_url(
            url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s, retry_on_timeout=False,
        )

    def _key(self, session_id: str) -> str:
        return self.prefix + session_id

    async def begin(self, session_id: str, customer_id: str = "") -> SessionView:
        buckets = self._active_buckets(session_id, customer_id, self.prefix + "rate:" + session_id,
                                       self.prefix + "customer-rate:" + customer_id)
        args = [f"{time.time():.6f}", *(str(v) for _, _, rate, burst in buckets for v in (rate, burst))]
        keys = [self._key(session_id), self._blocked_key(session_id), *(k for _, k, _, _ in buckets)]
        out = await self._bounded(self._redis.eval(_BEGIN, len(keys), *keys, *args))
        empty, blocked, raw = int(out[0]), bool(int(out[1])), out[2:]
        if empty:
            return SessionView(buckets[empty - 1][0])
        return SessionView(None, blocked and bool(session_id), tuple(Turn.from_json(r) for r in raw) if session_id else ())

    def _blocked_key(self, session_id: str) -> str:
        return self.prefix + "blocked:" + session_id

    async def allow(self, session_id: str, customer_id: str = "") -> str | None:
        return (await self.begin(session_id, customer_id)).limited

    async def history(self, session_id: str) -> list[Turn]:
        raw = await self._bounded(self._redis.lrange(self._key(session_id), 0, -1))
        return [Turn.from_json(r) for r in raw]

    async def append(self, session_id: str, turn: Turn) -> None:
        key = self._key(session_id)

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as tx:
                tx.rpush(key, turn.clipped(self.max_turn_chars).to_json())
                tx.ltrim(key, -self.max_turns, -1)
                tx.expire(key, max(1, int(self.ttl_s)))
                await tx.execute()

        await self._bounded(write())

    async def block(self, session_id: str, ttl_s: float) -> None:
        await self._bounded(self._redis.set(self._blocked_key(session_id), b"1", ex=max(1, int(ttl_s))))

    async def is_blocked(self, session_id: str) -> bool:
        return bool(await self._bounded(self._redis.exists(self._blocked_key(session_id))))

    async def _bounded(self, call: Any) -> Any:
        import redis.exceptions

        try:
            return await asyncio.wait_for(call, self.timeout_s)
        except (asyncio.TimeoutError, redis.exceptions.RedisError, OSError) as err:
            raise SessionUnavailable(f"session store unavailable: {type(err).__name__}") from None

    async def close(self) -> None:
        await self._redis.aclose()


#: :meth:`RedisSessionStore.begin` in one round trip. KEYS = the turns list, the block flag, then the token
#: buckets (the session's, the customer's; ARGV = now, then rate and burst per bucket). Each bucket is refilled by
#: the time since its last call; a token is taken from every bucket, or from none when one is empty; a bucket's
#: key expires once it would be full again. Returns {1-based index of the first empty bucket or 0, blocked 0/1,
#: turns...}; nothing is read for a refused call. (Keys of one chat may live on different slots: a single Redis or
#: a primary with replicas, not Redis Cluster.)
_BEGIN = """
local now = tonumber(ARGV[1])
local n = #KEYS - 2
local tokens, empty = {}, 0
for i = 1, n do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', KEYS[i + 2], 'tokens', 'at')
  local t = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  tokens[i] = math.min(burst, t + math.max(0, now - at) * rate)
  if tokens[i] < 1 and empty == 0 then empty = i end
end
for i = 1, n do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local t = tokens[i]
  if empty == 0 then t = t - 1 end
  redis.call('HSET', KEYS[i + 2], 'tokens', tostring(t), 'at', ARGV[1])
  redis.call('EXPIRE', KEYS[i + 2], math.ceil(burst / rate) + 1)
end
if empty ~= 0 then return {empty, 0} end
local out = {0, redis.call('EXISTS', KEYS[2])}
for _, turn in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do out[#out + 1] = turn end
return out
"""


def build_session_store(settings: Any) -> SessionStore | None:
    """The store ``settings.state`` puts the sessions in: Redis under ``state.backend: redis`` (every replica reads
    the same turns and takes from the same buckets), else this process. None when ``sessions.enabled`` is false."""
    s = settings.sessions
    if not s.enabled:
        return None
    if settings.state.shared:
        return RedisSessionStore(settings.state.redis_url, key_prefix=s.key_prefix, ttl_s=s.ttl_s, max_turns=s.max_turns,
                                 max_turn_chars=s.max_turn_chars, timeout_ms=s.timeout_ms,
                                 rate_per_s=s.rate_per_s, burst=s.rate_burst,
                                 customer_rate_per_s=s.customer_rate_per_s, customer_burst=s.customer_rate_burst)
    return MemorySessionStore(ttl_s=s.ttl_s, max_turns=s.max_turns, max_turn_chars=s.max_turn_chars,
                              max_sessions=s.max_sessions, rate_per_s=s.rate_per_s, burst=s.rate_burst,
                              customer_rate_per_s=s.customer_rate_per_s, customer_burst=s.customer_rate_burst)
