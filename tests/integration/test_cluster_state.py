"""The cluster is the normal case (issue 24): three service replicas (real grpc.aio servers, fake backend, loopback
ports) sharing one real redis-server through ``state.backend: redis``, called through ONE ``round_robin`` channel
over ``ipv4:A,B,C`` -- every call may land on any replica, consecutive calls land on different ones. Each property
is checked to have crossed replicas (the replica that answered each call is recorded), and each test goes red with
``state.backend: memory`` (docs/deploy.md, "Cluster")."""

from __future__ import annotations

import asyncio

import shutil
from collections import Counter
from typing import Any

import grpc
import pytest

from fakes import CUSTOMER

from benchmarks import postgres_process as postgres
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


@pytest.fixture
def pg_dsn():
    reason = postgres.skip_reason()
    require("postgresql", reason is None, reason or "")
    with postgres.running_postgres() as dsn:
        yield dsn


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
async def cluster(make_server, redis_server):  # noqa: C901
    async def start(per_replica: Any = None, **sections: Any) -> Cluster:
        """``per_replica(i)``: sections of replica i only (each pod's own mounted files)."""
        sections.setdefault("state", cluster_state(redis_server.url))
        sections.setdefault("traffic", {"enabled": False})  # the PostgreSQL traffic log is tests/unit/test_traffic_store's
        servers = [await make_server(**{**sections, **(per_replica(i) if per_replica else {})}) for i in range(REPLICAS)]
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


async def test_a_rollback_taken_on_one_replica_is_followed_by_all_and_survives_restart(cluster, make_server, redis_server,
                                                                                        tmp_path):
    """A canary at 50% on three replicas, each with its own copy of the rollout file (a pod's read-only ConfigMap: a
    rollback cannot travel through it). Thumbs-down on the canary's answers trip the guard on one replica; within
    ``poll_s`` every replica answers the canary's sessions from stable, and a replica started afterwards (a restarted
    pod, its file still naming the canary) obeys the rollback too."""
    import json

    from mangaassist.v1 import mangaassist_pb2 as pb

    from contracts.models import VERSIONED_CLASSIFIER

    canary = {"stable": "1", "canary": {"version": "2", "percent": 50}}

    def own_file(i: int) -> dict[str, Any]:
        path = tmp_path / f"pod-{i}" / "rollout.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(canary))
        return {"rollout": {"file": str(path), "poll_s": 0.1, "lifecycle_dir": "", "guard_min_feedback": 4}}

    async def gated(server: Any) -> None:  # every version gated (the e2e lifecycle test gates for real)
        controller = server.pipeline.rollout
        controller._gate_check, controller._sig = (lambda model, version: None), None
        assert await controller.reload_if_changed() and controller.config.canary is not None

    c = await cluster(per_replica=own_file)
    for server in c.servers:
        await gated(server)
    canary_sessions = [f"s-{i}" for i in range(200) if c.servers[0].pipeline.rollout.config.version_for(f"s-{i}") == "2"]
    message = "is there a recent hardcover box set you would suggest"
    for session in canary_sessions[:40]:
        reply, _ = await c.chat(message, session)
        if dict(reply.model_versions)[VERSIONED_CLASSIFIER] == "2":
            await c.stub.Feedback(pb.FeedbackRequest(request_id=reply.request_id, session_id=session,
                                                     kind=pb.FeedbackRequest.THUMBS_DOWN), timeout=5)
        if any(s.pipeline.rollout.config.canary is None for s in c.servers):
            break
    tripped = [i for i, s in enumerate(c.servers) if s.pipeline.rollout.config.canary is None]
    assert tripped, "the guard never tripped"
    import asyncio

    await asyncio.sleep(0.5)  # > poll_s
    for server in c.servers:
        assert server.pipeline.rollout.config.canary is None, "a replica kept the canary after the rollback"
    answers = {dict((await c.chat(message, s))[0].model_versions)[VERSIONED_CLASSIFIER] for s in canary_sessions[40:49]}
    assert answers == {"1"}, f"the canary's sessions were answered by {answers} after the rollback"
    # a restarted pod: its file still names the canary, the cluster's decision wins
    restarted = await make_server(state=cluster_state(redis_server.url), traffic={"enabled": False}, **own_file(7))
    controller = restarted.pipeline.rollout
    controller._gate_check, controller._sig = (lambda model, version: None), None
    await controller.reload_if_changed()
    await controller.follow_decision()
    assert controller.config.canary is None and controller.events[-1]["source"].startswith("cluster")


async def test_the_canary_guard_judges_the_clusters_feedback_not_one_replicas_share(cluster, tmp_path):
    """Six thumbs-down on the canary's answers (``guard_min_feedback: 6``), sent through the round_robin channel: no
    replica records more than two of them, so a guard judging its own replica's feedback never has enough to judge.
    The guard counters are the cluster's (Redis hashes per rollout id + version): the five first leave every replica
    on the canary, the sixth -- whichever replica takes it -- trips the rollback. Every replica's status reports the
    cluster's answer counts, not its own."""
    import json

    from mangaassist.v1 import mangaassist_pb2 as pb

    from contracts.models import VERSIONED_CLASSIFIER

    canary = {"stable": "1", "canary": {"version": "2", "percent": 50}}
    needed = 6

    def own_file(i: int) -> dict[str, Any]:
        path = tmp_path / f"pod-{i}" / "rollout.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(canary))
        return {"rollout": {"file": str(path), "poll_s": 0.1, "lifecycle_dir": "", "guard_min_feedback": needed}}

    c = await cluster(per_replica=own_file)
    controllers = [s.pipeline.rollout for s in c.servers]
    for controller in controllers:  # every version gated (the e2e lifecycle test gates for real)
        controller._gate_check, controller._sig = (lambda model, version: None), None
        assert await controller.reload_if_changed() and controller.config.canary is not None

    async def settled() -> None:
        for controller in controllers:
            await controller.settle()

    sessions = [f"g-{i}" for i in range(200) if controllers[0].config.version_for(f"g-{i}") == "2"]
    message = "is there a recent hardcover box set you would suggest"
    canary_answers, per_replica, miscounted = 0, Counter(), []
    for n, session in enumerate(sessions[:needed], start=1):
        reply, _ = await c.chat(message, session)
        assert dict(reply.model_versions)[VERSIONED_CLASSIFIER] == "2"
        canary_answers += 1
        got = await c.stub.Feedback(pb.FeedbackRequest(request_id=reply.request_id, session_id=session,
                                                       kind=pb.FeedbackRequest.THUMBS_DOWN), timeout=5)
        assert got.recorded
        per_replica[c.answered_by[-1]] += 1
        await settled()
        if n < needed:
            assert all(ctl.config.canary is not None for ctl in controllers), f"tripped after {n} of {needed} thumbs"
            for i, controller in enumerate(controllers):  # each replica reports the cluster's answers and feedback
                await controller.refresh_counts()
                status = controller.status()
                seen = (status["versions"].get("2", {}).get("answers"), status["feedback"].get("2", {}).get("thumbs_down"))
                if seen != (canary_answers, n):
                    miscounted.append((i, n, seen))
    assert max(per_replica.values()) < needed and len(per_replica) == REPLICAS, per_replica
    tripped = [i for i, ctl in enumerate(controllers) if ctl.config.canary is None]
    assert tripped, (f"the guard never tripped: {needed} thumbs-down on the canary over the cluster "
                     f"({dict(per_replica)} per replica)")
    assert "thumbs-down share" in controllers[tripped[0]].events[-1]["reason"]
    assert not miscounted, f"(replica, after n thumbs, (answers, thumbs-down) it reported): {miscounted}"


async def test_shadow_statistics_are_the_clusters(cluster, tmp_path):
    """A shadow version behind three replicas: every replica's status reports the shadow calls of all of them."""
    import asyncio
    import json

    rollout = {"stable": "1", "shadow": "2"}

    def own_file(i: int) -> dict[str, Any]:
        path = tmp_path / f"pod-{i}" / "rollout.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(rollout))
        return {"rollout": {"file": str(path), "poll_s": 0.1, "lifecycle_dir": ""}}

    c = await cluster(per_replica=own_file)
    controllers = [s.pipeline.rollout for s in c.servers]
    for controller in controllers:
        controller._gate_check, controller._sig = (lambda model, version: None), None
        await controller.reload_if_changed()
        assert controller.config.shadow == "2"
    took = {(await c.chat("is there a recent hardcover box set you would suggest", f"sh-{i}"))[1] for i in range(6)}
    assert len(took) == REPLICAS
    calls: list[Any] = []
    for _ in range(100):
        await asyncio.sleep(0.02)
        for controller in controllers:
            await controller.settle()
            await controller.refresh_counts()
        calls = [ctl.status()["shadow"].get("2", {}).get("calls") for ctl in controllers]
        if calls == [6] * REPLICAS:
            break
    assert calls == [6] * REPLICAS, f"shadow calls each replica reports: {calls} (6 made over the cluster)"


async def test_the_periodic_jobs_run_once_per_period_across_the_cluster_and_move_when_the_leader_drains(redis_server,
                                                                                                       tmp_path):
    """The drift, reversal-trigger and label-queue jobs, started by three replicas' ``start_monitors`` with the
    cluster's state settings, every 0.25 s: each job's body runs once per period across the cluster, on one replica
    (a Redis lease); when the replica leading a job drains, another replica carries on its schedule."""
    import asyncio
    import time
    from types import SimpleNamespace

    from server.metrics import Metrics
    from server.settings import Settings
    from server.traffic.monitors import start_monitors

    interval = 0.25
    settings = Settings().replace(
        state=cluster_state(redis_server.url), triggers={"interval_s": interval},
        drift={"interval_s": interval, "golden_path": "", "label_queue_dir": str(tmp_path / "labels"),
               "label_queue_interval_s": interval})
    runs: list[tuple[int, str, float]] = []  # (replica, job, when)
    replicas = []
    for i in range(REPLICAS):
        jobs = start_monitors(settings, SimpleNamespace(store=SimpleNamespace(records=lambda *a, **k: [])),
                              SimpleNamespace(backend=None), Metrics())
        for job in jobs:  # the job's body, counted (the wrapper, if any, is what the replica started)
            inner = getattr(job, "job", job)

            async def counted(_i=i, _name=type(inner).__name__) -> None:
                runs.append((_i, _name, time.monotonic()))

            inner.run_once = counted
        replicas.append(jobs)
    names = ("DriftMonitor", "TriggerMonitor", "LabelQueueJob")

    def check(since: float, until: float, label: str) -> dict[str, set[int]]:
        runners = {}
        for name in names:
            mine = [(i, t) for i, n, t in runs if n == name]
            during = [(i, t) for i, t in mine if since <= t <= until]
            periods = (until - since) / interval
            assert periods / 2 <= len(during) <= periods + 1, \
                f"{label}: {name} ran {len(during)} times in {periods:.1f} periods ({Counter(i for i, _ in during)})"
            gaps = [b - a for (_, a), (_, b) in zip(mine, mine[1:])]
            assert min(gaps) >= 0.6 * interval, f"{label}: {name} ran twice in one period (gaps {min(gaps):.3f} s)"
            runners[name] = {i for i, _ in during}
        return runners

    try:
        t0 = time.monotonic()
        await asyncio.sleep(6 * interval)
        t1 = time.monotonic()
        first = check(t0, t1, "three replicas")
        assert all(len(r) == 1 for r in first.values()), f"more than one replica ran a job: {first}"
        leader = next(iter(first["DriftMonitor"]))
        await asyncio.gather(*(job.stop() for job in replicas[leader]))  # the leader drains
        t2 = time.monotonic()
        await asyncio.sleep(6 * interval)
        after = check(t2, time.monotonic(), "after the leader drained")
        assert all(r and leader not in r for r in after.values()), f"the drained replica's jobs were not taken over: {after}"
    finally:
        for jobs in replicas:
            await asyncio.gather(*(job.stop() for job in jobs))


async def test_a_job_whose_lease_is_lost_stops(redis_server):
    """The leader's run is renewed every tick; when the lease turns out to be someone else's (it expired while this
    replica stalled, and another took it) the run is cancelled, not recorded, and this replica stops leading."""
    import asyncio

    import redis.asyncio as aioredis

    from server.traffic.lease import LeasedJob
    from server.periodic import PeriodicJob

    finished: list[bool] = []

    class Slow(PeriodicJob):
        interval_s, run_first = 0.2, True

        async def run_once(self) -> None:
            await asyncio.sleep(2.0)
            finished.append(True)

    job = LeasedJob(Slow(), redis_server.url, name="slow", key_prefix="t:")
    other = aioredis.from_url(redis_server.url)
    try:
        job.start()
        for _ in range(100):
            await asyncio.sleep(0.02)
            if job.leading:
                break
        assert job.leading
        await other.set("t:lease:slow", "another-replica", px=5000)  # the lease moved while the body ran
        for _ in range(100):
            await asyncio.sleep(0.02)
            if job.lost:
                break
        assert job.lost == 1 and not job.leading and not finished and job.runs == 0
        assert await other.get("t:lease:slow:last") is None  # the stopped run is not the period's run
    finally:
        await job.stop()
        assert await other.get("t:lease:slow") == b"another-replica"  # a drain releases only its own lease
        await other.aclose()


async def test_the_traffic_log_holds_every_replicas_turns_once(cluster, redis_server, pg_dsn, tmp_path):
    """The traffic log with the cluster's state settings: every replica writes its turns to the one PostgreSQL table
    (each pod also has an ``emptyDir`` SQLite path, which the embedded default would use), and a reader configured
    like any replica (the drift / trigger / label-queue jobs, ``mangaassist drift``) sees every replica's turns,
    each once."""
    from server.traffic.store import open_store

    def pod(i: int) -> dict[str, Any]:
        (tmp_path / f"pod-{i}").mkdir(exist_ok=True)
        return {"traffic": {"enabled": True, "sqlite_path": str(tmp_path / f"pod-{i}" / "traffic.db")}}

    c = await cluster(state={**cluster_state(redis_server.url), "postgres_dsn": pg_dsn}, per_replica=pod)
    mine = {}
    for i in range(12):
        reply, replica = await c.chat("is there a recent hardcover box set you would suggest", f"log-{i}")
        mine[reply.request_id] = replica
    assert len(set(mine.values())) == REPLICAS
    # a turn is queued in the RPC's done callback, which can run after the caller has its reply: wait (bounded) until
    # every replica has queued and written its turns -- what the reader then sees decides
    reader = open_store(c.servers[0].settings)
    try:
        for _ in range(100):
            for server in c.servers:
                await server.pipeline.traffic.flush()
            logged = Counter(r.request_id for r in reader.records())
            if all(logged[rid] for rid in mine):
                break
            await asyncio.sleep(0.05)
    finally:
        reader.close()
    by_replica = Counter(replica for rid, replica in mine.items() if logged[rid] == 1)
    assert by_replica == Counter(mine.values()), \
        f"turns the reader sees, by the replica that answered: {dict(by_replica)} of {dict(Counter(mine.values()))}"
    assert sum(logged.values()) == len(c.answered_by) and max(logged.values()) == 1, "a turn logged twice or lost"


async def test_a_rollout_plan_is_moved_by_one_replica_and_followed_by_all(cluster, make_server, redis_server, tmp_path):
    """A plan at its 1 % step on three replicas, each with its own copy of the file. The schedule job runs on every
    replica under the lease ``rollout-schedule``: clean scripted feedback (through the round_robin channel, so the
    counts are the cluster's) lets ONE replica move the canary to 5 % then 25 %, every replica follows (a session in
    the 1-5 % buckets is answered by the canary on each), and a pod restarted from the file's 1 % joins the cluster's
    25 % (the last decision moved 5 -> 25: it is followed as a point of the same plan)."""
    import asyncio
    import json

    from mangaassist.v1 import mangaassist_pb2 as pb

    from contracts.models import VERSIONED_CLASSIFIER
    from server.rollout.config import BUCKETS, bucket
    from server.traffic.lease import LeasedJob

    n = 12
    plan = {"version": "2", "steps": [{"percent": p, "dwell_s": 0, "min_samples": n} for p in (1, 5, 25, 100)]}
    rollout = {"stable": "1", "canary": {"version": "2", "percent": 1}, "plan": plan}

    def own_file(i: int) -> dict[str, Any]:
        path = tmp_path / f"pod-{i}" / "rollout.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(rollout))
        return {"rollout": {"file": str(path), "poll_s": 0.1, "lifecycle_dir": "", "plan_interval_s": 0.2,
                            "guard_max_thumbs_down_delta": 0.3, "guard_max_escalation_delta": 0.3}}

    def sessions(lo: float, hi: float, count: int, tag: str) -> list[str]:
        found = (f"{tag}-{i}" for i in range(100_000))
        return [s for s in found if lo * BUCKETS / 100 <= bucket(s) < hi * BUCKETS / 100][:count]

    c = await cluster(per_replica=own_file)
    controllers = [s.pipeline.rollout for s in c.servers]
    for controller in controllers:  # every version gated (the e2e lifecycle test gates for real)
        controller._gate_check, controller._sig = (lambda model, version: None), None
        assert await controller.reload_if_changed() and controller.config.canary.percent == 1
    probe = sessions(1, 5, 1, "probe")[0]
    message = "is there a recent hardcover box set you would suggest"
    for target in (5, 25):  # each step counts its own answers and thumbs
        for session in sessions(0, 1, n, f"c{target}") + sessions(50, 100, n, f"s{target}"):
            reply, _ = await c.chat(message, session)
            got = await c.stub.Feedback(pb.FeedbackRequest(request_id=reply.request_id, session_id=session,
                                                           kind=pb.FeedbackRequest.THUMBS_UP), timeout=5)
            assert got.recorded
        for controller in controllers:
            await controller.settle()
        for _ in range(150):  # the leader judges every 0.2 s, the others follow within poll_s
            if all(ctl.config.canary.percent == target for ctl in controllers):
                break
            await asyncio.sleep(0.05)
        assert [ctl.config.canary.percent for ctl in controllers] == [target] * REPLICAS
    for target in (5, 25):  # each move made by one replica (the lease holder then), followed by the others
        movers = [i for i, ctl in enumerate(controllers) if any(
            e["source"] == "schedule" and e["config"]["canary"]["percent"] == target for e in ctl.events)]
        assert len(movers) == 1, f"replicas that moved the plan to {target} % themselves: {movers} (one writer expected)"
        assert all(any(e["source"].startswith("cluster") and e["config"].get("canary", {}).get("percent") == target
                       for e in ctl.events) for i, ctl in enumerate(controllers) if i != movers[0])
    leased = [j for s in c.servers for j in s.jobs if isinstance(j, LeasedJob) and j.name == "rollout-schedule"]
    assert len(leased) == REPLICAS
    took = set()
    for _ in range(2 * REPLICAS):  # the probe's session, on every replica: now the canary's
        reply, by = await c.chat(message, probe)
        took.add(by)
        assert dict(reply.model_versions)[VERSIONED_CLASSIFIER] == "2"
    assert took == set(range(REPLICAS))
    restarted = await make_server(state=cluster_state(redis_server.url), traffic={"enabled": False}, **own_file(7))
    controller = restarted.pipeline.rollout
    controller._gate_check, controller._sig = (lambda model, version: None), None
    assert await controller.reload_if_changed() and controller.config.canary.percent == 1  # its file: the 1 % step
    assert await controller.follow_decision() and controller.config.canary.percent == 25  # the decision was 5 -> 25
