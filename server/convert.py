"""The boundary between protobuf and the pipeline's dataclasses (``from_pb`` / ``to_pb`` per message)."""

from __future__ import annotations

from mangaassist.v1 import mangaassist_pb2 as pb

from server.schema import (
    ChatInput,
    FeedbackInput,
    ChatResult,
    ClassifyResult,
    RetrieveInput,
    RetrieveResult,
    ServiceDescription,
)


def chat_from_pb(request: pb.ChatRequest, request_id: str) -> ChatInput:
    return ChatInput(
        message=request.message,
        session_id=request.session_id,
        customer_id=request.customer_id,
        request_id=request_id,
    )


def chat_to_pb(result: ChatResult) -> pb.ChatResponse:
    return pb.ChatResponse(
        answer=result.answer,
        cards=[
            pb.ProductCard(asin=c.asin, title=c.title, price=c.price, currency=c.currency, in_stock=c.in_stock)
            for c in result.cards
        ],
        intent=result.intent,
        intent_confidence=result.intent_confidence,
        tier=result.tier,
        model=result.model,
        timings=[pb.StageTiming(stage=stage, ms=ms) for stage, ms in result.timings],
        degraded=list(result.degraded),
        guardrail_actions=[
            pb.GuardrailAction(guardrail=a.guardrail, action=a.action, detail=a.detail) for a in result.guardrail_actions
        ],
        rule_decided=result.rule_decided,
        usage=pb.Usage(
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cost_usd=result.usage.cost_usd,
        ),
        request_id=result.request_id,
        blocked=result.blocked,
        model_versions=dict(result.model_versions),
    )


_FEEDBACK_KINDS = {pb.FeedbackRequest.THUMBS_UP: "thumbs_up", pb.FeedbackRequest.THUMBS_DOWN: "thumbs_down",
                   pb.FeedbackRequest.ESCALATED: "escalated"}


def feedback_from_pb(request: pb.FeedbackRequest) -> FeedbackInput:
    return FeedbackInput(request_id=request.request_id, session_id=request.session_id,
                         kind=_FEEDBACK_KINDS.get(request.kind, ""), comment=request.comment)


def classify_to_pb(result: ClassifyResult) -> pb.ClassifyResponse:
    return pb.ClassifyResponse(
        results=[
            pb.Classification(
                intent=r.intent,
                confidence=r.confidence,
                scores=dict(r.scores),
                rule_decided=r.rule_decided,
                rule=r.rule,
            )
            for r in result.results
        ],
        timings=[pb.StageTiming(stage=stage, ms=ms) for stage, ms in result.timings],
        request_id=result.request_id,
    )


def retrieve_from_pb(request: pb.RetrieveRequest, request_id: str) -> RetrieveInput:
    return RetrieveInput(
        query=request.query,
        top_k=request.top_k,
        rerank=request.rerank if request.HasField("rerank") else True,
        request_id=request_id,
    )


def retrieve_to_pb(result: RetrieveResult) -> pb.RetrieveResponse:
    return pb.RetrieveResponse(
        chunks=[
            pb.RetrievedChunk(
                chunk_id=c.chunk.chunk_id,
                doc_id=c.chunk.doc_id,
                source_type=c.chunk.source_type,
                text=c.chunk.text,
                asin=c.chunk.asin or "",
                score=c.score,
                reranked=c.reranked,
            )
            for c in result.chunks
        ],
        reranked=result.reranked,
        degraded=list(result.degraded),
        timings=[pb.StageTiming(stage=stage, ms=ms) for stage, ms in result.timings],
        request_id=result.request_id,
    )


def describe_to_pb(d: ServiceDescription) -> pb.DescribeResponse:
    return pb.DescribeResponse(
        service_version=d.service_version,
        model_versions=dict(d.model_versions),
        limits=pb.Limits(**d.limits),
        budgets=pb.Budgets(**d.budgets),
        tiers=[
            pb.TierRoute(
                intent=t.intent, tier=t.tier, temperature=t.temperature, max_tokens=t.max_tokens, available=t.available
            )
            for t in d.tiers
        ],
        intents=list(d.intents),
        retrieval_backend=d.retrieval_backend,
        backend_ready=d.backend_ready,
        llm_tiers=list(d.llm_tiers),
    )
