"""A deterministic in-process model backend for tests and ``python -m server --fake-backend``.

- classify: keyword rules -> intent (0.9 on the hit, the rest spread), "product_question" at 0.55 otherwise;
- embed: the normalised sum of one pseudo-random unit vector per token (seeded by a hash of the token), so
  texts sharing words are close -- enough for retrieval tests to be meaningful;
- adapt: identity (re-normalised); rerank: token overlap between query and passage.

Knobs: ``latency_s[method]`` adds a delay (honouring ``timeout_s`` like a real client: past it the call
raises :class:`BackendTimeout`), ``failures[method]`` is an exception raised on every call,
``gates[method]`` is an :class:`asyncio.Event` the call waits on, ``ready`` drives ``is_ready``. The fake
records ``calls`` and ``cancelled`` (method names) so tests can check that sub-calls were cancelled.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from typing import Sequence

import numpy as np

from server.backends.base import EMBEDDING_DIM, NUM_INTENTS
from server.errors import BackendTimeout
from server.intents import INTENT_LABELS, LABEL_TO_ID

_TOKEN = re.compile(r"[a-z0-9]+")
# Checked in order; the first intent with a keyword in the text wins.
KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("escalation", ("human", "agent", "complaint", "lawyer", "manager")),
    ("return_refund", ("return", "refund", "exchange", "damaged", "wrong item")),
    ("order_status", ("order", "tracking", "delivery", "arrive", "shipped")),
    ("price_deal", ("price", "cost", "discount", "coupon", "deal", "sale", "cheap")),
    ("recommendation", ("recommend", "similar", "something like", "suggest", "gift")),
    ("policy_faq", ("policy", "shipping", "payment", "membership", "pre-order", "preorder")),
    ("chitchat", ("hello", "hi", "thanks", "thank you", "joke", "bye")),
)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def keyword_intent(text: str) -> str | None:
    lowered = text.lower()
    words = set(tokens(text))
    for intent, keys in KEYWORDS:
        if any((k in lowered) if " " in k or "-" in k else (k in words) for k in keys):
            return intent
    return None


class FakeBackend:
    def __init__(
        self,
        *,
        latency_s: dict[str, float] | None = None,
        failures: dict[str, BaseException] | None = None,
        ready: bool = True,
        versions: dict[str, str] | None = None,
    ) -> None:
        self.latency_s = dict(latency_s or {})
        self.failures = dict(failures or {})
        self.gates: dict[str, asyncio.Event] = {}
        self.ready = ready
        self.versions = versions or {
            "intent_classifier": "1",
            "query_embedder": "1",
            "embedding_adapter": "1",
            "reranker": "1",
        }
        self.calls: list[str] = []
        self.cancelled: list[str] = []
        self.in_flight = 0
        self.closed = False
        self._token_vectors: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ the contract
    async def classify(self, texts: Sequence[str], *, timeout_s: float, version: str | None = None) -> np.ndarray:
        await self._enter("classify", timeout_s)
        probs = np.zeros((len(texts), NUM_INTENTS), dtype=np.float32)
        for i, text in enumerate(texts):
            intent = keyword_intent(text)
            top, conf = (intent, 0.9) if intent else ("product_question", 0.55)
            probs[i, :] = (1.0 - conf) / (NUM_INTENTS - 1)
            probs[i, LABEL_TO_ID[top]] = conf
        return probs

    async def embed(self, texts: Sequence[str], *, timeout_s: float) -> np.ndarray:
        await self._enter("embed", timeout_s)
        return np.stack([self.vector(t) for t in texts]) if texts else np.zeros((0, EMBEDDING_DIM), np.float32)

    async def adapt(self, vectors: np.ndarray, *, timeout_s: float) -> np.ndarray:
        await self._enter("adapt", timeout_s)
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    async def rerank(self, query: str, passages: Sequence[str], *, timeout_s: float) -> np.ndarray:
        await self._enter("rerank", timeout_s)
        q = set(tokens(query))
        scores = [len(q & set(tokens(p))) / (len(q) or 1) * 10.0 - 5.0 for p in passages]
        return np.asarray(scores, dtype=np.float32)

    async def is_ready(self) -> bool:
        return self.ready and not self.closed

    async def model_versions(self) -> dict[str, str]:
        return dict(self.versions)

    async def close(self) -> None:
        self.closed = True

    # ------------------------------------------------------------------ helpers
    def vector(self, text: str) -> np.ndarray:
        """The deterministic embedding of ``text`` (tests use it to build matching index vectors)."""
        acc = np.zeros(EMBEDDING_DIM, dtype=np.float32)
        for tok in tokens(text):
            vec = self._token_vectors.get(tok)
            if vec is None:
                seed = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
                vec = np.random.default_rng(seed).standard_normal(EMBEDDING_DIM).astype(np.float32)
                self._token_vectors[tok] = vec / np.linalg.norm(vec)
                vec = self._token_vectors[tok]
            acc += vec
        norm = float(np.linalg.norm(acc))
        if norm == 0.0:
            acc[0] = 1.0
            return acc
        return acc / norm

    async def _enter(self, method: str, timeout_s: float) -> None:
        self.calls.append(method)
        failure = self.failures.get(method)
        if failure is not None:
            raise failure
        delay = self.latency_s.get(method, 0.0)
        gate = self.gates.get(method)
        if not delay and gate is None:
            return
        self.in_flight += 1
        try:
            await asyncio.wait_for(self._wait(method, delay, gate), timeout=timeout_s)
        except asyncio.TimeoutError:
            raise BackendTimeout(f"{method} took longer than {timeout_s:.3f}s", model=method) from None
        finally:
            self.in_flight -= 1

    async def _wait(self, method: str, delay: float, gate: asyncio.Event | None) -> None:
        try:
            if delay:
                await asyncio.sleep(delay)
            if gate is not None:
                await gate.wait()
        except asyncio.CancelledError:
            # the call was abandoned: its timeout fired or the request was cancelled (what a cancelled
            # Triton request looks like from here)
            self.cancelled.append(method)
            raise


__all__ = ["FakeBackend", "INTENT_LABELS", "keyword_intent"]
