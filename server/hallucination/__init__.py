"""Async hallucination scoring, off the request's critical path (docs/architecture.md, "Async hallucination scoring").

    answer -> claims.extract_claims -> scorer.HallucinationScorer (cross-encoder on Triton:
    "hallucination_scorer", SOURCE/CLAIM -> SCORE logit) -> worker.ScoringQueue (bounded, drop-on-full)
    -> metrics / review.ReviewQueue (score >= 0.5) / blocked sessions (score >= 0.7)

Wiring: :func:`build_scoring_queue` builds the whole thing; :func:`make_submit_hook` is what the
request path calls after it has produced a response.
"""

from __future__ import annotations

from typing import Any

from server.hallucination.claims import Claim, extract_claims
from server.hallucination.facts import fact_text
from server.hallucination.metrics import HallucinationMetrics
from server.hallucination.review import RedisReviewQueue, ReviewItem, ReviewQueue, build_review_queue
from server.hallucination.scorer import (
    BackendScoreFn,
    ClaimScore,
    FallbackScoreFn,
    HallucinationResult,
    HallucinationScorer,
    TritonScoreFn,
    lexical_score_fn,
    onnx_score_fn,
    triton_score_fn,
)
from server.hallucination.worker import HallucinationConfig, ScoringJob, ScoringQueue, make_submit_hook

__all__ = [
    "BackendScoreFn", "Claim", "ClaimScore", "FallbackScoreFn", "HallucinationConfig", "HallucinationMetrics", "HallucinationResult",
    "HallucinationScorer", "RedisReviewQueue", "ReviewItem", "ReviewQueue", "ScoringJob", "ScoringQueue", "TritonScoreFn", "build_scoring_queue",
    "extract_claims", "fact_text", "lexical_score_fn", "make_submit_hook", "onnx_score_fn", "triton_score_fn",
]


def build_scoring_queue(
    settings: Any,
    score_fn: BackendScoreFn,
    *,
    metrics: Any = None,
    catalog: Any = None,
    review_db: str | None = None,
    maxsize: int | None = None,
    workers: int = 1,
) -> ScoringQueue:
    """Scorer + review queue + ScoringQueue with thresholds from ``settings.guardrails`` (and, unless given, its
    ``hallucination_review_db`` and ``hallucination_queue_size``). Call ``queue.start()`` on the running loop and
    ``await queue.stop()`` when draining."""
    g = settings.guardrails
    scorer = HallucinationScorer(score_fn, catalog=catalog)
    review_db = g.hallucination_review_db if review_db is None else review_db
    maxsize = g.hallucination_queue_size if maxsize is None else maxsize
    return ScoringQueue(
        scorer, build_review_queue(settings, review_db), metrics, maxsize=maxsize, workers=workers,
        config=HallucinationConfig.from_settings(settings),
    )
