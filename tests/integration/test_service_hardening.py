"""The gRPC surface's hardening (issue 13 #6), each observed on the server's side of a real grpc.aio server on a
loopback port with the real servicer and interceptor (fake models):

- per-caller rate limit: the limiter's counters and the error metric; RESOURCE_EXHAUSTED with ``retry-after``;
- authorisation per RPC and caller: PERMISSION_DENIED, the access log's status per caller;
- the access log: one line per call with caller, RPC, status, latency and request id, never the text;
- connection age, max concurrent streams and keepalive enforcement: the peer (client port) each call came
  from, and the number of calls the server held at once;
- the SDK's retry service config: how many attempts reached the server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
import pytest
from fakes import CUSTOMER, ORDERS, FakeCatalog, FakeIndex, rule_matcher
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import generate_latest
from mangaassist.v1 import mangaassist_pb2 as pb
from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

from clients import errors as client_errors
from clients.sdk import AsyncMangaAssistClient, channel_options
from server.app import Components, start_server
from server.backends.fake import FakeBackend
from server.errors import Overloaded, Unavailable
from server.guardrails.base import PassThroughGuardrails
from server.lifecycle import Listener, bind_listener
from tests.integration.conftest import test_settings
from tests.support.servers import drained_after

pytestmark = pytest.mark.L0

ACCESS = "mangaassist.access"


@pytest.fixture
async def serve():
    """``await serve(**settings_sections) -> (RunningServer, Listener, FakeBackend)``; the listener's
    interceptor (and its rate limiter) is the one serving."""
    listeners: dict[int, Listener] = {}

    async def start(**sections: Any):
        backend = FakeBackend()
        settings = test_settings(**sections)
        listener = bind_listener(settings)
        components = Components(backend=backend, catalog=FakeCatalog(), index=FakeIndex(backend=backend),
                                guardrails=PassThroughGuardrails(), tiers={}, rules=rule_matcher())
        running = await start_server(settings, components, serve_metrics=False, listener=listener)
        listeners[id(running)] = listener
        return running

    async with drained_after(start) as factory:

        async def make(**sections: Any):
            running = await factory(**sections)
            return running, listeners[id(running)], running.components.backend

        yield make


def _errors(running, code: str, reason: str) -> float:
    return running.metrics.registry.get_sample_value("mangaassist_errors_total", {"code": code, "reason": reason}) or 0.0


def _access(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS]


# ------------------------------------------------------------------------------------------ rate limit
async def test_rate_limit_is_per_caller_with_a_retry_after_hint(serve):
    running, listener, _ = await serve(server={"auth_tokens": ("alpha.s1", "beta.s2"), "rate_limit_per_s": 2.0,
                                               "rate_limit_burst": 3})
    limiter = listener.interceptor.limiter
    async with AsyncMangaAssistClient(running.target, token="alpha.s1") as alpha, \
            AsyncMangaAssistClient(running.target, token="beta.s2") as beta:
        for _ in range(3):  # the burst
            await alpha.chat("hello")
        with pytest.raises(client_errors.RateLimited) as refused:
            await alpha.chat("hello")
        assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert 0 < refused.value.retry_after_s <= 0.5  # 2 tokens/s: the next one is back within 0.5 s
        assert (await beta.classify(["hello"])).results  # another caller's bucket is full
        await asyncio.sleep(refused.value.retry_after_s + 0.05)
        assert (await alpha.chat("hello")).answer  # the hint was right
    # observed on the server: one refusal (the SDK does not retry RESOURCE_EXHAUSTED), five admitted, two buckets
    assert (limiter.admitted, limiter.refused, len(limiter)) == (5, 1, 2)
    assert _errors(running, "RESOURCE_EXHAUSTED", "rate_limited") == 1


async def test_without_tokens_the_rate_limit_keys_on_the_peer_and_skips_health(serve):
    running, listener, _ = await serve(server={"rate_limit_per_s": 0.5, "rate_limit_burst": 1})
    async with AsyncMangaAssistClient(running.target) as client:
        await client.chat("hello")
        for _ in range(3):
            assert await client.health("readiness") == "SERVING"  # probes are never limited
        with pytest.raises(client_errors.RateLimited):
            await client.describe()
    assert listener.interceptor.limiter.refused == 1
    assert list(listener.interceptor.limiter._buckets) == ["ipv4:127.0.0.1"]  # the peer's host, not its port


# ------------------------------------------------------------------------------------------ authorisation
async def test_each_rpc_needs_its_scope_and_callers_hold_only_theirs(serve, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS)
    running, _, _ = await serve(server={
        "auth_tokens": ("shop.t1", "analytics.t2", "ops.t3", "legacytoken"),
        "auth_scopes": {"shop": ["chat"], "analytics": ["classify", "retrieve"]},  # ops, token4: not listed = all
    })
    async with AsyncMangaAssistClient(running.target, token="shop.t1") as shop:
        assert (await shop.chat("hello")).answer
        assert [m async for m in shop.chat_stream("hello")][-1].final.answer
        for call in (shop.classify(["hello"]), shop.retrieve("one piece"), shop.describe()):
            with pytest.raises(client_errors.PermissionDenied):
                await call
    async with AsyncMangaAssistClient(running.target, token="analytics.t2") as analytics:
        assert (await analytics.classify(["hello"])).results
        with pytest.raises(client_errors.PermissionDenied):
            await analytics.chat("hello")
    async with AsyncMangaAssistClient(running.target, token="ops.t3") as ops, \
            AsyncMangaAssistClient(running.target, token="legacytoken") as legacy:
        assert (await ops.describe()).service_version
        assert (await legacy.classify(["hello"])).results
    # server reflection is an admin call
    for token, code in (("shop.t1", grpc.StatusCode.PERMISSION_DENIED), ("ops.t3", None)):
        async with grpc.aio.insecure_channel(running.target) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                             metadata=(("authorization", f"Bearer {token}"),), timeout=5)
            if code is None:
                assert [r async for r in call][0].list_services_response.service
            else:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    [r async for r in call]
                assert err.value.code() == code
    # observed on the server: who was refused what
    denied = sorted((r.caller, r.rpc) for r in _access(caplog) if r.status == "PERMISSION_DENIED")
    assert denied == [("analytics", "Chat"), ("shop", "Classify"), ("shop", "Describe"), ("shop", "Retrieve"),
                      ("shop", "ServerReflectionInfo")]
    assert {r.caller for r in _access(caplog) if r.status == "OK"} == {"shop", "analytics", "ops", "token4"}
    assert _errors(running, "PERMISSION_DENIED", "permission_denied") == 5
    assert not [r for r in _access(caplog) if "t1" in r.getMessage() or "legacytoken" in r.getMessage()]


async def test_a_caller_acts_only_for_its_customers_and_sees_only_their_orders(serve, caplog):
    caplog.set_level(logging.DEBUG)
    running, _, _ = await serve(server={
        "auth_tokens": ("kiosk.t1", "web.t2", "support.t3"),
        "auth_customers": {"kiosk": ["C-7"], "web": [CUSTOMER], "support": ["*"]},
    })
    (order_id, order), = ORDERS.items()
    ask = f"Where is my order {order_id}? tracking please"
    async with AsyncMangaAssistClient(running.target, token="kiosk.t1") as kiosk:
        with pytest.raises(client_errors.PermissionDenied) as err:  # acting for a customer it does not serve
            await kiosk.chat(ask, customer_id=CUSTOMER, session_id="k1")
        assert CUSTOMER not in str(err.value)
        for stream in (False, True):  # its own customer: the order is not on that account
            if stream:
                reply = [m async for m in kiosk.chat_stream(ask, customer_id="C-7", session_id="k2")][-1].final
            else:
                reply = await kiosk.chat(ask, customer_id="C-7", session_id="k3")
            assert "couldn't find an order" in reply.answer and "on your account" in reply.answer, reply.answer
            assert not reply.cards
            leaked = [v for k, v in order.items() if k not in ("order_id", "customer_id") and v
                      for v in (v if isinstance(v, list) else [v]) if str(v) in str(reply)]
            assert not leaked, leaked
    async with AsyncMangaAssistClient(running.target, token="web.t2") as web, \
            AsyncMangaAssistClient(running.target, token="support.t3") as support:
        for client in (web, support):
            reply = await client.chat(ask, customer_id=CUSTOMER, session_id=f"own-{id(client)}")
            assert order["tracking_number"] in reply.answer
        anonymous = await web.chat(ask, session_id="anon")  # no customer: no orders at all
        assert "signed-in" in anonymous.answer and order["tracking_number"] not in anonymous.answer
        with pytest.raises(client_errors.InvalidRequest):
            await support.chat("hello", customer_id="x" * 129)
    # no field of the order reached any log line (DEBUG included) or metric label, for anyone
    seen = "\n".join(r.getMessage() for r in caplog.records) + generate_latest(running.metrics.registry).decode()
    for value in (order["tracking_number"], order["carrier"], order["eta"], order["placed_at"], *order["items"]):
        assert value not in seen, value


# ------------------------------------------------------------------------------------------ access log
async def test_one_access_line_per_call_without_the_message_text(serve, caplog):
    caplog.set_level(logging.INFO)
    running, _, _ = await serve(server={"auth_tokens": ("web.k1",)})
    secret = "my card is 4111 1111 1111 1111 and I live at 12 Sakura St"
    async with AsyncMangaAssistClient(running.target, token="web.k1") as client:
        reply = await client.chat(secret, request_id="req-abc-1")
        with pytest.raises(client_errors.InvalidRequest):
            await client.classify([""], request_id="req-abc-2")
        stream = [m async for m in client.chat_stream("tell me about one piece", request_id="req-abc-3")]
        await client.health("readiness")
    async with AsyncMangaAssistClient(running.target) as anonymous:
        with pytest.raises(client_errors.Unauthenticated):
            await anonymous.chat(secret, request_id="req-abc-4")
    lines = _access(caplog)
    assert [(r.rpc, r.status, r.reason, r.caller, r.request_id) for r in lines] == [
        ("Chat", "OK", "-", "web", "req-abc-1"),
        ("Classify", "INVALID_ARGUMENT", "invalid_argument", "web", "req-abc-2"),
        ("ChatStream", "OK", "-", "web", "req-abc-3"),
        ("Chat", "UNAUTHENTICATED", "unauthenticated", "ipv4:127.0.0.1", "req-abc-4"),
    ]  # health: no line
    assert reply.request_id == "req-abc-1" and stream[-1].final.request_id == "req-abc-3"
    assert all(0 <= r.latency_ms < 5000 and r.peer.startswith("ipv4:127.0.0.1:") for r in lines)
    assert "latency_ms=" in lines[0].getMessage() and "request_id=req-abc-1" in lines[0].getMessage()
    for record in caplog.records:  # no log line of the whole service carries the customer's text
        assert "4111" not in record.getMessage() and "Sakura" not in record.getMessage()


# ------------------------------------------------------------------------------------------ connections
async def _peers_of_two_calls(target: str, caplog, pause_s: float, options=()) -> list[str]:
    async with grpc.aio.insecure_channel(target, options=list(options)) as channel:
        stub = pb_grpc.MangaAssistStub(channel)
        await stub.Describe(pb.DescribeRequest(), timeout=5)
        await asyncio.sleep(pause_s)
        await stub.Describe(pb.DescribeRequest(), timeout=5)
    return [r.peer for r in _access(caplog) if r.rpc == "Describe"][-2:]


async def test_connections_age_out_so_clients_reconnect(serve, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS)
    aged, _, _ = await serve(server={"max_connection_age_ms": 200, "max_connection_age_grace_ms": 100})
    first, second = await _peers_of_two_calls(aged.target, caplog, pause_s=1.0)
    assert first != second  # the server closed the first connection: the second call came on a new one
    forever, _, _ = await serve(server={"max_connection_age_ms": 0})
    first, second = await _peers_of_two_calls(forever.target, caplog, pause_s=1.0)
    assert first == second


async def test_max_concurrent_streams_caps_calls_per_connection(serve):
    async def peak_in_flight(max_streams: int) -> int:
        running, _, backend = await serve(server={"max_concurrent_streams": max_streams},
                                          budgets={"total_ms": 5000, "classify_ms": 5000})
        backend.latency_s = {"classify": 0.4}
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, running.pipeline.admission.in_flight)
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        async with AsyncMangaAssistClient(running.target, timeout=10) as client:  # one channel, one connection
            replies = await asyncio.gather(*(client.classify([f"text {i}"]) for i in range(5)))
        watcher.cancel()
        assert all(r.results for r in replies)  # the ones over the cap waited; none failed
        return peak

    assert await peak_in_flight(2) == 2
    assert await peak_in_flight(100) == 5


async def test_a_client_pinging_too_often_is_sent_away(serve, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS)
    # a client pinging its idle connection as often as gRPC lets it (one ping per second at most)
    pinger = [("grpc.keepalive_time_ms", 100), ("grpc.keepalive_timeout_ms", 1000),
              ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)]
    # the default policy (no pings on an idle connection, at most one per 10 s); one strike forgiven, not two
    strict, listener, _ = await serve(server={"keepalive_max_ping_strikes": 1})
    assert ("grpc.http2.min_ping_interval_without_data_ms", 10_000) in listener.options
    first, second = await _peers_of_two_calls(strict.target, caplog, pause_s=3.2, options=pinger)
    assert first != second  # GOAWAY too_many_pings: the second call had to reconnect
    lenient, _, _ = await serve(server={"keepalive_max_ping_strikes": 1, "keepalive_permit_without_calls": True,
                                        "keepalive_min_ping_interval_ms": 50})
    first, second = await _peers_of_two_calls(lenient.target, caplog, pause_s=3.2, options=pinger)
    assert first == second


# ------------------------------------------------------------------------------------------ SDK retries
def _failing(running, errors: list[BaseException]) -> list[int]:
    """Make the pipeline's chat raise ``errors`` in turn (then answer); returns the attempt counter."""
    attempts = [0]
    chat = running.pipeline.chat

    async def flaky(*args: Any, **kwargs: Any):
        attempts[0] += 1
        if errors:
            raise errors.pop(0)
        return await chat(*args, **kwargs)

    running.pipeline.chat = flaky
    return attempts


async def test_sdk_retries_unavailable_only(serve):
    running, _, _ = await serve()
    async with AsyncMangaAssistClient(running.target) as client:
        attempts = _failing(running, [Unavailable("draining", reason="draining")])
        assert (await client.chat("hello")).answer
        assert attempts[0] == 2  # retried once, on the server's UNAVAILABLE
        attempts = _failing(running, [Overloaded("full")])
        with pytest.raises(client_errors.Overloaded):
            await client.chat("hello")
        assert attempts[0] == 1  # RESOURCE_EXHAUSTED is not retried
        attempts = _failing(running, [Unavailable("down")] * 5)
        with pytest.raises(client_errors.Unavailable):
            await client.chat("hello")
        assert attempts[0] == 3  # maxAttempts
    async with AsyncMangaAssistClient(running.target, retries=False) as plain:
        attempts = _failing(running, [Unavailable("down")])
        with pytest.raises(client_errors.Unavailable):
            await plain.chat("hello")
        assert attempts[0] == 1
    assert dict(channel_options(retries=False))["grpc.enable_retries"] == 0


async def test_sdk_retry_throttling_stops_a_retry_storm(serve):
    running, _, _ = await serve()
    async with AsyncMangaAssistClient(running.target) as client:
        attempts = _failing(running, [Unavailable("down")] * 1000)
        for _ in range(20):
            with pytest.raises(client_errors.Unavailable):
                await client.chat("hello")
    # unthrottled: 60 attempts; the bucket (10 tokens, retries only above 5) allows a handful of retries
    assert 20 <= attempts[0] <= 26, attempts[0]
