"""The gRPC servicer: parse -> pipeline -> serialise. No logic lives here; errors are mapped by
the outcome interceptor (``server/interceptors.py``)."""

from __future__ import annotations

from typing import AsyncIterator, Callable

import grpc
from mangaassist.v1 import mangaassist_pb2 as pb
from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

from server import convert
from server.pipeline import Pipeline
from server.interceptors import request_id_of
from server.request import current_request_id


class MangaAssistServicer(pb_grpc.MangaAssistServicer):
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    async def Chat(self, request: pb.ChatRequest, context: grpc.aio.ServicerContext) -> pb.ChatResponse:
        result = await self.pipeline.chat(
            convert.chat_from_pb(request, _request_id(context)), caller_remaining_s=context.time_remaining(),
            after_response=_after_response(context),
        )
        return convert.chat_to_pb(result)

    async def ChatStream(
        self, request: pb.ChatRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ChatStreamResponse]:
        stream = self.pipeline.chat_stream(
            convert.chat_from_pb(request, _request_id(context)), caller_remaining_s=context.time_remaining(),
            after_response=_after_response(context),
        )
        async for item in stream:
            if isinstance(item, str):
                if item:
                    yield pb.ChatStreamResponse(delta=item)
            else:
                yield pb.ChatStreamResponse(final=convert.chat_to_pb(item))

    async def Classify(self, request: pb.ClassifyRequest, context: grpc.aio.ServicerContext) -> pb.ClassifyResponse:
        result = await self.pipeline.classify(
            list(request.texts), request_id=_request_id(context), caller_remaining_s=context.time_remaining()
        )
        return convert.classify_to_pb(result)

    async def Retrieve(self, request: pb.RetrieveRequest, context: grpc.aio.ServicerContext) -> pb.RetrieveResponse:
        result = await self.pipeline.retrieve(
            convert.retrieve_from_pb(request, _request_id(context)), caller_remaining_s=context.time_remaining()
        )
        return convert.retrieve_to_pb(result)

    async def Describe(self, request: pb.DescribeRequest, context: grpc.aio.ServicerContext) -> pb.DescribeResponse:
        return convert.describe_to_pb(await self.pipeline.describe())

    async def Feedback(self, request: pb.FeedbackRequest, context: grpc.aio.ServicerContext) -> pb.FeedbackResponse:
        return pb.FeedbackResponse(recorded=await self.pipeline.feedback(convert.feedback_from_pb(request)))


def _after_response(context: grpc.aio.ServicerContext) -> Callable[[Callable[[], None]], None]:
    """Run work (hallucination scoring) when the RPC is done, i.e. after the response was sent."""
    return lambda fn: context.add_done_callback(lambda _context: fn())


def _request_id(context: grpc.aio.ServicerContext) -> str:
    """The id the identity interceptor bound for this call (the caller's sanitised ``x-request-id`` or a fresh one)."""
    return current_request_id() or request_id_of(context.invocation_metadata())
