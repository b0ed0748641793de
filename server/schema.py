"""The pipeline's input and output records: plain dataclasses, free of protobuf and gRPC.

``server/convert.py`` turns proto messages into these and back; the stages only ever see these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from server.guardrails.base import GuardrailAction
from server.retrieval.base import ScoredChunk


@dataclass(frozen=True)
class ChatInput:
    message: str
    session_id: str = ""
    customer_id: str = ""
    request_id: str = ""


@dataclass(frozen=True)
class Card:
    asin: str
    title: str
    price: float
    currency: str
    in_stock: bool


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class ChatResult:
    answer: str
    intent: str
    intent_confidence: float
    tier: str
    model: str
    request_id: str
    cards: tuple[Card, ...] = ()
    timings: tuple[tuple[str, float], ...] = ()
    degraded: tuple[str, ...] = ()
    guardrail_actions: tuple[GuardrailAction, ...] = ()
    rule_decided: bool = False
    blocked: bool = False
    usage: Usage = field(default_factory=Usage)
    #: Triton model -> the version that answered (a rollout's pick; empty when no rollout or a rule decided)
    model_versions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FeedbackInput:
    request_id: str
    session_id: str
    kind: str  # "thumbs_up" | "thumbs_down" | "escalated" (server/rollout/feedback.py KINDS); "" = unspecified
    comment: str = ""


@dataclass(frozen=True)
class IntentResult:
    intent: str
    confidence: float
    scores: Mapping[str, float]
    rule_decided: bool = False
    rule: str = ""


@dataclass(frozen=True)
class ClassifyResult:
    results: tuple[IntentResult, ...]
    request_id: str
    timings: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class RetrieveInput:
    query: str
    top_k: int = 0  # 0 = the configured default
    rerank: bool = True
    request_id: str = ""


@dataclass(frozen=True)
class RetrieveResult:
    chunks: tuple[ScoredChunk, ...]
    reranked: bool
    request_id: str
    degraded: tuple[str, ...] = ()
    timings: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class TierRouteInfo:
    intent: str
    tier: str
    temperature: float
    max_tokens: int
    available: bool


@dataclass(frozen=True)
class ServiceDescription:
    service_version: str
    model_versions: Mapping[str, str]
    limits: Mapping[str, int]
    budgets: Mapping[str, float]
    tiers: tuple[TierRouteInfo, ...]
    intents: tuple[str, ...]
    retrieval_backend: str
    backend_ready: bool
    llm_tiers: tuple[str, ...]
