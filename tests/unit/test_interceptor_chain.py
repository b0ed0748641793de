"""The interceptor chain's order (server/interceptors.py): the refusing links (auth, rate limit, request checks)
only raise, and the outcome link outside them answers for them -- status, reason, metrics and one access line --
under the request id the identity link bound first. Driven the way grpc.aio drives a chain (each link's
continuation is the next link), on the chain ``Interceptors.from_settings`` builds; the service tests
(tests/integration/test_service_hardening.py) check the same on a real server."""

from __future__ import annotations

import logging

import grpc
import pytest

from server.interceptors import Interceptors
from server.metrics import Metrics
from server.request import current_request_id
from server.settings import ServerSettings

pytestmark = pytest.mark.L0

METHOD = "/mangaassist.v1.MangaAssist/Classify"


class FakeContext:
    def __init__(self) -> None:
        self.aborted: tuple | None = None

    def peer(self) -> str:
        return "ipv4:127.0.0.1:5555"

    async def abort(self, code, details, trailing_metadata=()):
        self.aborted = (code, details, tuple(trailing_metadata))
        raise grpc.aio.AbortError()


async def _call(chain, metadata, seen):
    async def servicer(request, context):
        seen.append(current_request_id())
        return "answer"

    async def run(links, details):  # grpc.aio's _run_interceptor: each continuation is the next link
        if not links:
            return grpc.unary_unary_rpc_method_handler(servicer)
        return await links[0].intercept_service(lambda d: run(links[1:], d), details)

    handler = await run(list(chain), _Details(METHOD, metadata))
    context = FakeContext()
    try:
        result = await handler.unary_unary(object(), context)
    except grpc.aio.AbortError:
        result = None
    return result, context


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method, metadata):
        self.method, self.invocation_metadata = method, metadata


async def test_refusals_from_inner_links_are_answered_by_the_outcome_link(caplog):
    metrics = Metrics()
    chain = Interceptors.from_settings(ServerSettings(auth_tokens=("shop.s3cr3t",), auth_scopes={"shop": ("chat",)}),
                                       metrics).chain
    seen: list[str] = []
    with caplog.at_level(logging.INFO, logger="mangaassist.access"):
        _, no_token = await _call(chain, (("x-request-id", "rid-1"),), seen)
        _, no_scope = await _call(chain, (("authorization", "Bearer shop.s3cr3t"), ("x-request-id", "rid-2")), seen)
    assert seen == []  # the servicer never ran
    assert no_token.aborted[0] == grpc.StatusCode.UNAUTHENTICATED
    assert no_token.aborted[2] == (("mangaassist-reason", "unauthenticated"),)
    assert no_scope.aborted[0] == grpc.StatusCode.PERMISSION_DENIED
    lines = [(r.status, r.caller, r.request_id) for r in caplog.records if r.name == "mangaassist.access"]
    assert lines == [("UNAUTHENTICATED", "ipv4:127.0.0.1", "rid-1"), ("PERMISSION_DENIED", "shop", "rid-2")]
    sample = metrics.registry.get_sample_value
    assert sample("mangaassist_requests_total", {"method": "Classify", "code": "UNAUTHENTICATED"}) == 1


async def test_an_admitted_call_runs_under_the_bound_request_id():
    chain = Interceptors.from_settings(ServerSettings(), Metrics()).chain
    seen: list[str] = []
    result, context = await _call(chain, (("x-request-id", "rid-ok"),), seen)
    assert (result, context.aborted, seen) == ("answer", None, ["rid-ok"])
