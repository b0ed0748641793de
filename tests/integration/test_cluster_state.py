"""The cluster is the normal case (issue 24): three service replicas (real grpc.aio servers, fake backend, loopback
ports) sharing one real redis-server through ``state.backend: redis``, called through ONE ``round_robin`` channel
over ``ipv4:A,B,C`` -- every call may land on any replica, consecutive calls land on different ones. Each property
is checked to have crossed replicas (the replica that answered each call is recorded), and each test goes red with
``state.backend: memory`` (README "Cluster")."""

from __future__ import annotations

import shutil
from collections import Counter
from typing import Any

import grpc
import pytest

from fakes import CUSTOMER

from benchmarks.sessions.redis_process import RedisProcess
from tests.support.requirements import require

pytestmark = pytest.mark.L0

ORDER = "MA-20481937"  # the fake catalog's order of CUSTOMER, shipped (tests/integration/fakes.py)
REPLICAS = 3


@pytest.fixture
def redis_server():
    require("redis-server", shutil.which("redis-server") is not None, "the cluster tests run a real Redis")
    with RedisProcess() as server:
        yield server


def cluster_state(redis_url: str) -> dict[str, Any]:
    """The settings every replica runs with: the chart's cluster values (state in Redis)."""
    return {"backend": "redis", "redis_url": redis_url, "timeout_ms": 500}


class Cluster:
    """``n`` replicas and one round_robin channel over all of them; ``answered_by`` says which replica took each
    Chat / Feedback, in call order."""

    def __init__(self, servers: list[Any]) -> None:
        from mangaassist.v1 import mangaassist_pb2_grpc

        self.servers = servers
        self.answered_by: list[int] = []
        for i, server in enumerate(servers):
            self._tag(server, i)
        target = "ipv4:" + ",".join(f"127.0.0.1:{s.port}" for s in servers)
        self.channel = grpc.aio.insecure_channel(target, options=[("grpc.lb_policy_name", "round_robin")])
        self.stub = mangaassist_pb2_grpc.MangaAssistStub(self.channel)

    def _tag(self, server: Any, i: int) -> None:
        pipeline = server.pipeline
        chat, feedback = pipeline.chat, pipeline.feedback

        async def tagged_chat(*args, **kwargs):
            self.answered_by.append(i)
            return await chat(*args, **kwargs)

        async def tagged_feedback(*args, **kwargs):
            self.answered_by.append(i)
            return await feedback(*args, **kwargs)

        pipeline.chat, pipeline.feedback = tagged_chat, tagged_feedback

    async def ready(self) -> None:
        """Every replica connected: until then round_robin spreads calls over the subchannels already up."""
        from mangaassist.v1 import mangaassist_pb2 as pb

        for attempt in range(60):
            start = len(self.answered_by)
            for _ in range(REPLICAS):
                await self.stub.Chat(pb.ChatRequest(message="hello", session_id=f"warm-{attempt}-{_}"), timeout=5)
            if len(set(self.answered_by[start:])) == REPLICAS:
                return
        raise AssertionError(f"round_robin never reached all replicas: {Counter(self.answered_by)}")

    async def chat(self, message: str, session_id: str, customer_id: str = "") -> tuple[Any, int]:
        from mangaassist.v1 import mangaassist_pb2 as pb

        reply = await self.stub.Chat(pb.ChatRequest(message=message, session_id=session_id, customer_id=customer_id),
                                     timeout=5)
        return reply, self.answered_by[-1]

    async def close(self) -> None:
        await self.channel.close()


@pytest.fixture
async def cluster(make_server, redis_server):
    async def start(**sections: Any) -> Cluster:
        sections.setdefault("state", cluster_state(redis_server.url))
        servers = [await make_server(**sections) for _ in range(REPLICAS)]
        made = Cluster(servers)
        await made.ready()
        started.append(made)
        return made

    started: list[Cluster] = []
    yield start
    for made in started:
        await made.close()


async def test_follow_ups_resolve_on_whichever_replica_they_land(cluster):
    """Eight interleaved two-turn conversations: the bare order number of turn 2 is an answer to turn 1's question,
    which only the shared store can tell the replica that takes it."""
    c = await cluster(sessions={"timeout_ms": 500})
    conversations = [f"conv-{i}" for i in range(8)]
    first = {}
    for conv in conversations:  # every turn 1 first: turn 2 of each lands wherever round_robin sends it
        asked, first[conv] = await c.chat("where is my order?", conv, CUSTOMER)
        assert "order number" in asked.answer, asked.answer
    moved, held = 0, 0
    for conv in conversations:
        reply, replica = await c.chat(ORDER, conv, CUSTOMER)
        moved += replica != first[conv]
        held += reply.intent == "order_status" and ORDER in reply.answer and "shipped" in reply.answer
        assert "session_unavailable" not in reply.degraded
    assert moved >= 4, f"the follow-ups did not change replica ({moved} of 8): the test proves nothing"
    assert held == len(conversations), f"{held} of {len(conversations)} follow-ups resolved across replicas"


async def test_the_session_and_customer_rate_limits_hold_across_replicas(cluster):
    """A session's 5th message and a customer's 7th are refused whichever replica takes them: the buckets are the
    cluster's, not one per replica (in-process they would be 3x as large)."""
    c = await cluster(sessions={"timeout_ms": 500, "rate_per_s": 0.01, "rate_burst": 4,
                                "customer_rate_per_s": 0.01, "customer_rate_burst": 6})
    took = {(await c.chat(f"hello {i}", "noisy"))[1] for i in range(4)}
    assert len(took) >= 2, "the session's calls all landed on one replica"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await c.chat("and again", "noisy")
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "sends faster" in refused.value.details()
    for i in range(6):  # six sessions of one customer, spread over the replicas
        await c.chat("hello", f"tab-{i}", "C-9")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await c.chat("hello", "tab-7", "C-9")
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (await c.chat("hello", "calm", "C-10"))[0].answer  # other sessions and customers are not affected


async def test_feedback_on_another_replica_is_attributed(cluster):
    """The answer's attribution record (request -> versions) is in Redis before the answer goes out: a thumbs-down
    sent at once, through the same channel, lands on the next replica and comes back ``recorded=true``."""
    from mangaassist.v1 import mangaassist_pb2 as pb

    c = await cluster()
    recorded, moved = 0, 0
    for i in range(6):
        reply, answered = await c.chat("where is my order?", f"fb-{i}", CUSTOMER)
        got = await c.stub.Feedback(pb.FeedbackRequest(request_id=reply.request_id, session_id=f"fb-{i}",
                                                       kind=pb.FeedbackRequest.THUMBS_DOWN), timeout=5)
        moved += c.answered_by[-1] != answered
        recorded += got.recorded
    assert moved == 6, "the feedback did not change replica: the test proves nothing"
    assert recorded == 6, f"{recorded} of 6 feedbacks on another replica were attributed"
    unknown = await c.stub.Feedback(pb.FeedbackRequest(request_id="no-such-answer", kind=pb.FeedbackRequest.THUMBS_UP),
                                    timeout=5)
    assert not unknown.recorded
    # the record expires with state.feedback_ttl_s (Redis TTL on the key)
    store = c.servers[0].pipeline.feedback_store
    ttl = await store._redis.ttl(store.prefix + reply.request_id)
    assert 0 < ttl <= c.servers[0].settings.state.feedback_ttl_s
