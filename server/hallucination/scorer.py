"""Answer-level hallucination score from a (source, claim) cross-encoder.

For every checkable claim (:mod:`server.hallucination.claims`) the scorer pairs the claim with every
candidate source -- the catalog fact sheet of each product in play (:func:`~server.hallucination.facts.fact_text`)
and sentence windows of the retrieved chunks -- and asks the backend for one logit per pair in a single
call. P(fabricated) = sigmoid(logit). A claim is as grounded as its *best-supporting* source (min over
sources); the answer is as fabricated as its *worst* claim (max over claims): 0 grounded ... 1 fabricated.
An answer without checkable claims scores 0; a claim with no source at all to check against is counted
as unverifiable and not scored (template answers built from the order DB, small talk).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, Sequence

import numpy as np

from contracts.models import HALLUCINATION_SCORER
from server.hallucination.claims import Claim, extract_claims
from server.hallucination.facts import fact_text, model_input, unique, windows

log = logging.getLogger(__name__)

#: (sources, claims) -- parallel lists, one row per pair -> [n] logits (higher = more likely fabricated)
BackendScoreFn = Callable[[list[str], list[str]], Awaitable[np.ndarray]]


@dataclass(frozen=True)
class ClaimScore:
    claim: str
    probability: float  # P(fabricated) against the best-supporting source
    source: str  # that source


@dataclass(frozen=True)
class HallucinationResult:
    score: float  # max over claims; 0.0 when nothing was checkable
    claims: tuple[ClaimScore, ...] = ()
    unverifiable: int = 0  # checkable claims with no source to check against

    @property
    def worst(self) -> ClaimScore | None:
        return max(self.claims, key=lambda c: c.probability, default=None)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, dtype=np.float64), -60.0, 60.0)))


def _text_of(source: Any) -> str:
    """A retrieved source: a string, a ScoredChunk (``.chunk.text``) or a Chunk (``.text``)."""
    if isinstance(source, str):
        return source
    chunk = getattr(source, "chunk", source)
    return getattr(chunk, "text", "") or ""


class HallucinationScorer:
    def __init__(
        self,
        backend_score_fn: BackendScoreFn,
        *,
        catalog: Any | None = None,
        max_sources_per_claim: int = 16,
        max_claims: int = 8,
        window_chars: int = 360,
        evidence_hints: bool = True,
    ) -> None:
        """``catalog``: optional ``get_product(asin)`` provider used when products are given as bare ASINs.
        ``evidence_hints``: send claims as :func:`~server.hallucination.facts.model_input` builds them (the
        trained model expects this; turn off only for backends that want the bare claim)."""
        self.backend_score_fn = backend_score_fn
        self.catalog = catalog
        self.max_sources_per_claim = max_sources_per_claim
        self.max_claims = max_claims
        self.window_chars = window_chars
        self.evidence_hints = evidence_hints

    def _products(self, products: Sequence[Any]) -> list[Any]:
        out = []
        for p in products:
            if isinstance(p, str):
                p = self.catalog.get_product(p) if self.catalog is not None else None
            if p is not None:
                out.append(p)
        return out

    def pairs_for(self, claims: Sequence[Claim], sources: Sequence[Any], products: Sequence[Any]) -> list[list[str]]:
        """Candidate sources per claim, capped at ``max_sources_per_claim``.

        A claim about known products (``claim.asins``) is checked only against those products' fact
        sheets and the retrieved chunks that are not about *other* products (policy chunks, chunks of its
        own products): "It costs $13.99" about vol. 3 must not be grounded by vol. 4's price. A claim that
        names none of the products in play is checked against everything.
        """
        facts = {_asin(p): fact_text(p) for p in products}
        retrieved: list[tuple[str, str]] = []  # (asin or "", window)
        seen: set[str] = set()
        for s in sources:
            asin = _chunk_asin(s)
            for w in windows(_text_of(s), max_chars=self.window_chars):
                if w not in seen:
                    seen.add(w)
                    retrieved.append((asin, w))
        out = []
        for claim in claims:
            if claim.asins:
                own = set(claim.asins)
                cands = [facts[a] for a in claim.asins if a in facts] + [w for a, w in retrieved if not a or a in own]
            else:
                cands = [*facts.values(), *(w for _, w in retrieved)]
            out.append(unique(cands)[: self.max_sources_per_claim])
        return out

    async def score(
        self, answer: str, *, sources: Sequence[Any] = (), products: Sequence[Any] = ()
    ) -> HallucinationResult:
        """``sources``: retrieved chunks (ScoredChunk / Chunk / str); ``products``: products in play
        (Product / catalog dict / ASIN)."""
        products = self._products(products)
        claims = extract_claims(answer, products, max_claims=self.max_claims)
        if not claims:
            return HallucinationResult(0.0)
        candidates = self.pairs_for(claims, sources, products)
        flat_sources: list[str] = []
        flat_claims: list[str] = []
        for claim, cands in zip(claims, candidates):
            for source in cands:
                src, cl = model_input(source, claim.text) if self.evidence_hints else (source, claim.text)
                flat_sources.append(src)
                flat_claims.append(cl)
        unverifiable = sum(1 for c in candidates if not c)
        if not flat_sources:
            return HallucinationResult(0.0, unverifiable=unverifiable)
        logits = np.asarray(await self.backend_score_fn(flat_sources, flat_claims), dtype=np.float64).reshape(-1)
        if logits.shape[0] != len(flat_sources):
            raise ValueError(f"score backend returned {logits.shape[0]} logits for {len(flat_sources)} pairs; this is a bug")
        probs = _sigmoid(logits)
        scored: list[ClaimScore] = []
        start = 0
        for claim, cands in zip(claims, candidates):
            if cands:
                block = probs[start : start + len(cands)]
                best = int(np.argmin(block))
                scored.append(ClaimScore(claim.text, float(block[best]), cands[best]))
                start += len(cands)
        score = max(c.probability for c in scored)
        return HallucinationResult(0.0 if math.isnan(score) else score, tuple(scored), unverifiable)


def _chunk_asin(source: Any) -> str:
    chunk = getattr(source, "chunk", source)
    return "" if isinstance(chunk, str) else (getattr(chunk, "asin", None) or "")


def _asin(product: Any) -> str:
    return (product.get("asin") if isinstance(product, Mapping) else getattr(product, "asin", "")) or ""


# ------------------------------------------------------------------------------------------ backends
class TritonScoreFn:
    """Score with the served Triton ensemble ``hallucination_scorer`` (the model contract's
    ``HALLUCINATION_SCORER``: SOURCE, CLAIM -> SCORE logit), one row per (source, claim) pair.

    Calls go through the one :class:`~server.backends.client.TritonClient` -- give it the process's shared
    client (its circuit breaker then trips and recovers like the classifier's), a URL (it owns a client and
    :meth:`close` closes it) or a tritonclient-like transport (tests; borrowed, never closed). Rows go out in
    slices of ``max_batch_size`` (the model's max batch), concurrently.
    """

    def __init__(
        self,
        client_or_url: Any,
        *,
        model: str = HALLUCINATION_SCORER.name,
        timeout_s: float = 5.0,
        max_batch_size: int = HALLUCINATION_SCORER.max_batch_size,
    ) -> None:
        from server.backends.client import TritonClient
        from server.settings import TritonSettings

        if isinstance(client_or_url, TritonClient):
            self.triton, self._owns = client_or_url, False
        elif isinstance(client_or_url, str):
            self.triton, self._owns = TritonClient(TritonSettings(url=client_or_url)), True
        else:
            self.triton, self._owns = TritonClient(TritonSettings(), transport=client_or_url), False
        self.model = model
        self.timeout_s = timeout_s
        self.max_batch_size = max_batch_size

    async def __call__(self, sources: list[str], claims: list[str]) -> np.ndarray:
        from server.backends.client import bytes_column

        if not sources:
            return np.zeros(0, dtype=np.float32)
        (source, claim), (score,) = HALLUCINATION_SCORER.inputs, HALLUCINATION_SCORER.outputs
        out = await self.triton.infer(
            self.model, {source.name: bytes_column(sources), claim.name: bytes_column(claims)}, [score.name],
            timeout_s=self.timeout_s, max_batch_size=self.max_batch_size,
        )
        return out[score.name].reshape(-1)

    async def close(self) -> None:
        if self._owns:
            await self.triton.close()


def triton_score_fn(client_or_url: Any, **kwargs: Any) -> TritonScoreFn:
    """See :class:`TritonScoreFn`."""
    return TritonScoreFn(client_or_url, **kwargs)


class FallbackScoreFn:
    """``primary`` (the Triton model) while it answers; ``fallback`` (the lexical scorer) for
    ``retry_after_s`` after it fails -- the model is absent from the repository, Triton is down or
    shedding -- then the primary is tried again. ``using_fallback`` says which one scored last."""

    def __init__(
        self, primary: BackendScoreFn, fallback: BackendScoreFn, *, retry_after_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.retry_after_s = retry_after_s
        self._monotonic = monotonic
        self._primary_down_until = 0.0
        self.using_fallback = False

    async def __call__(self, sources: list[str], claims: list[str]) -> np.ndarray:
        if self._monotonic() >= self._primary_down_until:
            try:
                logits = await self.primary(sources, claims)
                if self.using_fallback:
                    log.info("hallucination scorer: the primary backend answers again")
                self.using_fallback = False
                return logits
            except Exception as err:  # noqa: BLE001 -- any backend failure: score lexically meanwhile
                if not self.using_fallback:
                    log.warning("hallucination scorer: primary backend failed (%s); lexical scoring for %.0fs", err, self.retry_after_s)
                self._primary_down_until = self._monotonic() + self.retry_after_s
        self.using_fallback = True
        return await self.fallback(sources, claims)

    async def close(self) -> None:
        for fn in (self.primary, self.fallback):
            close = getattr(fn, "close", None)
            if close is not None:
                await close()


def onnx_score_fn(onnx_path: str, tokenizer_dir: str, *, max_length: int = 128, threads: int = 1, batch_size: int = 32) -> BackendScoreFn:
    """In-process scorer (ONNX Runtime in a worker thread) for deployments without the Triton model, and
    for offline evaluation. ``tokenizer_dir``: the trained model's ``hf`` directory (or the base checkpoint)."""
    import onnxruntime as ort
    from transformers import AutoTokenizer

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    tok = AutoTokenizer.from_pretrained(tokenizer_dir)

    def run(sources: list[str], claims: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(sources), batch_size):
            enc = tok(sources[i : i + batch_size], claims[i : i + batch_size], padding=True, truncation=True, max_length=max_length, return_tensors="np")
            feed = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
            feed["token_type_ids"] = enc["token_type_ids"].astype(np.int64) if "token_type_ids" in enc else np.zeros_like(feed["input_ids"])
            out.append(sess.run(None, feed)[0].reshape(-1))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    async def score(sources: list[str], claims: list[str]) -> np.ndarray:
        return await asyncio.to_thread(run, sources, claims)

    return score


_TOKEN = re.compile(r"\$?\d+(?:[.,]\d+)*%?|\b[A-Z][a-zA-Z'\-]+\b")
_NOT_FACT = frozenset(
    "I It It's Its This That These Those The A An You Your We Our They He She Yes No Also And But Or So If "
    "Great Sure Hi Hello Thanks Volume Vol Per According Good Right Both".split()
)


def lexical_score_fn() -> BackendScoreFn:
    """A deterministic, model-free stand-in (``--fake-backend`` runs and tests): a claim's numbers and
    capitalised names must all appear in the source. Logit -3 (p~0.05) when they do; one missing
    token gives at least 0.5 (p~0.62, an alert), rising to 4.5 (p~0.99) as the missing share grows."""

    def one(source: str, claim: str) -> float:
        tokens = [t.lstrip("$").replace(",", "") for t in _TOKEN.findall(claim) if t not in _NOT_FACT]
        if not tokens:
            return -3.0
        haystack = source.replace(",", "")
        missing = sum(1 for t in tokens if t not in haystack)
        return -3.0 if not missing else 0.5 + 4.0 * missing / len(tokens)

    async def score(sources: list[str], claims: list[str]) -> np.ndarray:
        return np.array([one(s, c) for s, c in zip(sources, claims)], dtype=np.float32)

    return score
