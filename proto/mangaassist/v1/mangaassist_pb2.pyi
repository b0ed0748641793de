from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChatRequest(_message.Message):
    __slots__ = ("session_id", "message", "customer_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    message: str
    customer_id: str
    def __init__(self, session_id: _Optional[str] = ..., message: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class ProductCard(_message.Message):
    __slots__ = ("asin", "title", "price", "currency", "in_stock")
    ASIN_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    IN_STOCK_FIELD_NUMBER: _ClassVar[int]
    asin: str
    title: str
    price: float
    currency: str
    in_stock: bool
    def __init__(self, asin: _Optional[str] = ..., title: _Optional[str] = ..., price: _Optional[float] = ..., currency: _Optional[str] = ..., in_stock: bool = ...) -> None: ...

class StageTiming(_message.Message):
    __slots__ = ("stage", "ms")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    MS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    ms: float
    def __init__(self, stage: _Optional[str] = ..., ms: _Optional[float] = ...) -> None: ...

class GuardrailAction(_message.Message):
    __slots__ = ("guardrail", "action", "detail")
    GUARDRAIL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    guardrail: str
    action: str
    detail: str
    def __init__(self, guardrail: _Optional[str] = ..., action: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "cost_usd")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    cost_usd: float
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ...) -> None: ...

class ChatResponse(_message.Message):
    __slots__ = ("answer", "cards", "intent", "intent_confidence", "tier", "model", "timings", "degraded", "guardrail_actions", "rule_decided", "usage", "request_id", "blocked", "model_versions")
    class ModelVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    CARDS_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    INTENT_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    GUARDRAIL_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    RULE_DECIDED_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    answer: str
    cards: _containers.RepeatedCompositeFieldContainer[ProductCard]
    intent: str
    intent_confidence: float
    tier: str
    model: str
    timings: _containers.RepeatedCompositeFieldContainer[StageTiming]
    degraded: _containers.RepeatedScalarFieldContainer[str]
    guardrail_actions: _containers.RepeatedCompositeFieldContainer[GuardrailAction]
    rule_decided: bool
    usage: Usage
    request_id: str
    blocked: bool
    model_versions: _containers.ScalarMap[str, str]
    def __init__(self, answer: _Optional[str] = ..., cards: _Optional[_Iterable[_Union[ProductCard, _Mapping]]] = ..., intent: _Optional[str] = ..., intent_confidence: _Optional[float] = ..., tier: _Optional[str] = ..., model: _Optional[str] = ..., timings: _Optional[_Iterable[_Union[StageTiming, _Mapping]]] = ..., degraded: _Optional[_Iterable[str]] = ..., guardrail_actions: _Optional[_Iterable[_Union[GuardrailAction, _Mapping]]] = ..., rule_decided: bool = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., request_id: _Optional[str] = ..., blocked: bool = ..., model_versions: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ChatStreamResponse(_message.Message):
    __slots__ = ("delta", "final")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    delta: str
    final: ChatResponse
    def __init__(self, delta: _Optional[str] = ..., final: _Optional[_Union[ChatResponse, _Mapping]] = ...) -> None: ...

class ClassifyRequest(_message.Message):
    __slots__ = ("texts",)
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    texts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, texts: _Optional[_Iterable[str]] = ...) -> None: ...

class Classification(_message.Message):
    __slots__ = ("intent", "confidence", "scores", "rule_decided", "rule")
    class ScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    RULE_DECIDED_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    intent: str
    confidence: float
    scores: _containers.ScalarMap[str, float]
    rule_decided: bool
    rule: str
    def __init__(self, intent: _Optional[str] = ..., confidence: _Optional[float] = ..., scores: _Optional[_Mapping[str, float]] = ..., rule_decided: bool = ..., rule: _Optional[str] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("results", "timings", "request_id")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[Classification]
    timings: _containers.RepeatedCompositeFieldContainer[StageTiming]
    request_id: str
    def __init__(self, results: _Optional[_Iterable[_Union[Classification, _Mapping]]] = ..., timings: _Optional[_Iterable[_Union[StageTiming, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class RetrieveRequest(_message.Message):
    __slots__ = ("query", "top_k", "rerank")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    RERANK_FIELD_NUMBER: _ClassVar[int]
    query: str
    top_k: int
    rerank: bool
    def __init__(self, query: _Optional[str] = ..., top_k: _Optional[int] = ..., rerank: bool = ...) -> None: ...

class RetrievedChunk(_message.Message):
    __slots__ = ("chunk_id", "doc_id", "source_type", "text", "asin", "score", "reranked")
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ASIN_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    RERANKED_FIELD_NUMBER: _ClassVar[int]
    chunk_id: str
    doc_id: str
    source_type: str
    text: str
    asin: str
    score: float
    reranked: bool
    def __init__(self, chunk_id: _Optional[str] = ..., doc_id: _Optional[str] = ..., source_type: _Optional[str] = ..., text: _Optional[str] = ..., asin: _Optional[str] = ..., score: _Optional[float] = ..., reranked: bool = ...) -> None: ...

class RetrieveResponse(_message.Message):
    __slots__ = ("chunks", "reranked", "degraded", "timings", "request_id")
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    RERANKED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[RetrievedChunk]
    reranked: bool
    degraded: _containers.RepeatedScalarFieldContainer[str]
    timings: _containers.RepeatedCompositeFieldContainer[StageTiming]
    request_id: str
    def __init__(self, chunks: _Optional[_Iterable[_Union[RetrievedChunk, _Mapping]]] = ..., reranked: bool = ..., degraded: _Optional[_Iterable[str]] = ..., timings: _Optional[_Iterable[_Union[StageTiming, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_concurrency", "max_message_bytes", "max_text_chars", "max_classify_texts", "default_top_k", "max_top_k")
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_TEXT_CHARS_FIELD_NUMBER: _ClassVar[int]
    MAX_CLASSIFY_TEXTS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TOP_K_FIELD_NUMBER: _ClassVar[int]
    MAX_TOP_K_FIELD_NUMBER: _ClassVar[int]
    max_concurrency: int
    max_message_bytes: int
    max_text_chars: int
    max_classify_texts: int
    default_top_k: int
    max_top_k: int
    def __init__(self, max_concurrency: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., max_text_chars: _Optional[int] = ..., max_classify_texts: _Optional[int] = ..., default_top_k: _Optional[int] = ..., max_top_k: _Optional[int] = ...) -> None: ...

class Budgets(_message.Message):
    __slots__ = ("total_ms", "classify_ms", "embed_ms", "adapter_ms", "retrieve_ms", "rerank_ms", "rerank_min_remaining_ms", "answer_ms", "triton_margin_ms")
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    CLASSIFY_MS_FIELD_NUMBER: _ClassVar[int]
    EMBED_MS_FIELD_NUMBER: _ClassVar[int]
    ADAPTER_MS_FIELD_NUMBER: _ClassVar[int]
    RETRIEVE_MS_FIELD_NUMBER: _ClassVar[int]
    RERANK_MS_FIELD_NUMBER: _ClassVar[int]
    RERANK_MIN_REMAINING_MS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_MS_FIELD_NUMBER: _ClassVar[int]
    TRITON_MARGIN_MS_FIELD_NUMBER: _ClassVar[int]
    total_ms: float
    classify_ms: float
    embed_ms: float
    adapter_ms: float
    retrieve_ms: float
    rerank_ms: float
    rerank_min_remaining_ms: float
    answer_ms: float
    triton_margin_ms: float
    def __init__(self, total_ms: _Optional[float] = ..., classify_ms: _Optional[float] = ..., embed_ms: _Optional[float] = ..., adapter_ms: _Optional[float] = ..., retrieve_ms: _Optional[float] = ..., rerank_ms: _Optional[float] = ..., rerank_min_remaining_ms: _Optional[float] = ..., answer_ms: _Optional[float] = ..., triton_margin_ms: _Optional[float] = ...) -> None: ...

class TierRoute(_message.Message):
    __slots__ = ("intent", "tier", "temperature", "max_tokens", "available")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    intent: str
    tier: str
    temperature: float
    max_tokens: int
    available: bool
    def __init__(self, intent: _Optional[str] = ..., tier: _Optional[str] = ..., temperature: _Optional[float] = ..., max_tokens: _Optional[int] = ..., available: bool = ...) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("service_version", "model_versions", "limits", "budgets", "tiers", "intents", "retrieval_backend", "backend_ready", "llm_tiers")
    class ModelVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SERVICE_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    RETRIEVAL_BACKEND_FIELD_NUMBER: _ClassVar[int]
    BACKEND_READY_FIELD_NUMBER: _ClassVar[int]
    LLM_TIERS_FIELD_NUMBER: _ClassVar[int]
    service_version: str
    model_versions: _containers.ScalarMap[str, str]
    limits: Limits
    budgets: Budgets
    tiers: _containers.RepeatedCompositeFieldContainer[TierRoute]
    intents: _containers.RepeatedScalarFieldContainer[str]
    retrieval_backend: str
    backend_ready: bool
    llm_tiers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, service_version: _Optional[str] = ..., model_versions: _Optional[_Mapping[str, str]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., budgets: _Optional[_Union[Budgets, _Mapping]] = ..., tiers: _Optional[_Iterable[_Union[TierRoute, _Mapping]]] = ..., intents: _Optional[_Iterable[str]] = ..., retrieval_backend: _Optional[str] = ..., backend_ready: bool = ..., llm_tiers: _Optional[_Iterable[str]] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("request_id", "session_id", "kind", "comment")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[FeedbackRequest.Kind]
        THUMBS_UP: _ClassVar[FeedbackRequest.Kind]
        THUMBS_DOWN: _ClassVar[FeedbackRequest.Kind]
        ESCALATED: _ClassVar[FeedbackRequest.Kind]
    KIND_UNSPECIFIED: FeedbackRequest.Kind
    THUMBS_UP: FeedbackRequest.Kind
    THUMBS_DOWN: FeedbackRequest.Kind
    ESCALATED: FeedbackRequest.Kind
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    session_id: str
    kind: FeedbackRequest.Kind
    comment: str
    def __init__(self, request_id: _Optional[str] = ..., session_id: _Optional[str] = ..., kind: _Optional[_Union[FeedbackRequest.Kind, str]] = ..., comment: _Optional[str] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("recorded",)
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    recorded: bool
    def __init__(self, recorded: bool = ...) -> None: ...
