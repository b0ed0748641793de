"""The cluster tier (issue 24): THREE ``python -m server`` processes started from the rendered production chart
(``values-production.yaml``: TLS, bearer tokens, ``state.backend: redis``), one real tritonserver (the Triton
container's rendered flags, CPU repository), one real redis-server and one real PostgreSQL, called through ONE
``ipv4:A,B,C`` ``round_robin`` channel -- every call may land on any replica, consecutive calls on different ones.

The processes are started the way tests/deploy/test_chart_processes.py starts one release (tests/deploy/chart_run.py:
rendered config file and env, container ports -> loopback ports). Values changed from values-production.yaml, and
why: ``state.postgres.dsn`` names the local PostgreSQL instead of RDS (and the ``mangaassist-state-redis`` Secret the
local Redis); budgets and the shared-state timeouts are generous (a busy 2-core box is not a latency rig: a turn
cut by a budget or a slow store call would be answered without memory for a reason that is not the cluster's); the
session bucket is small (``rate_burst`` 5, ~no refill) so the rate-limit test needs few calls; the rollout is on
(stable 1, polled each second, the registry on a claim) with only the thumbs-down guard judging (``guard_min_feedback``
6; the rate guards' minimum is out of reach, so a slow box cannot trip them), and Triton serves the classifier's
versions 1 and 2 (2: a copy of 1's file, gated -- the guard is driven by feedback, not by the model).

Which replica answered each call is read from the replicas' own ``/metrics`` (``mangaassist_requests_total`` by
method, before and after the call: calls are sequential). Tests, in order (the last kills a replica):

* the open-world development conversations (2 of each family) score the same through the three replicas as on
  one, and every follow-up changed replica;
* a session's 6th message is refused whichever replica takes it;
* a Feedback that lands on another replica than the answer is ``recorded=true``;
* the PostgreSQL traffic log holds every answered turn of every replica exactly once;
* PostgreSQL stopped: chats answered, every turn the replicas could not log counted as dropped; back: logged again;
* a canary (the rollout ConfigMap changed to stable 1 + canary 2 at 90%, version 2 gated in the MLflow registry on the
  lifecycle claim): thumbs-down on its answers, each sent to another replica than the one that answered, are counted
  by the cluster's guard until it rolls back; every replica then answers from stable, and a replica restarted with
  the canary still in its file obeys the rollback;
* SIGKILL of the replica that answered a conversation's last turn: the conversation goes on, with its memory, on
  the two others (the caller's channel retries a call the dead replica never took, as a gRPC retry policy does).

Each goes red with ``state.backend: memory`` (docs/deploy.md, "Cluster", has the messages).
"""

from __future__ import annotations

import json
import shutil
import signal
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import helm_python
import pytest

from benchmarks import postgres_process as postgres
from benchmarks.sessions.redis_process import RedisProcess
from model_repository.lifecycle.evaluation import conversations_openworld as ow
from mangaassist.v1 import mangaassist_pb2 as pb
from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc
from contracts.models import VERSIONED_CLASSIFIER
from server.rollout import config as rollout_config
from tests.deploy.chart_run import (BUILD_DIR, BUILT, CPU_REPOSITORY, Ensemble, Network, start_rendered_triton,
                                    tls_secret)
from tests.deploy.chart_view import CHART, NAMESPACE, RELEASE, production_values, render
from tests.support.requirements import needs

pytestmark = [
    pytest.mark.L1,
    needs("build", BUILT, f"needs the built CPU repository and index under {BUILD_DIR}"),
    needs("redis-server", shutil.which("redis-server") is not None, "the cluster runs a real Redis"),
    needs("postgresql", postgres.skip_reason() is None, postgres.skip_reason() or ""),
]

REPLICAS = 3
TOKENS = "cluster-token-one,cluster-token-two"  # the production existingSecret (created out of band)
GENEROUS_BUDGETS = {"total_ms": 20_000.0, "classify_ms": 10_000.0, "embed_ms": 10_000.0, "adapter_ms": 10_000.0,
                    "retrieve_ms": 10_000.0, "rerank_ms": 10_000.0}
SESSION_BURST = 5
LIFECYCLE_CLAIM = "mangaassist-lifecycle"  # the PVC holding the registry (mlflow.db) the gate job writes
GUARD_MIN_FEEDBACK = 6  # > 2 per replica: a guard judging its own replica's share never has enough
CANARY = {"version": "2", "percent": 90}
#: What a caller configures (retry a call that failed UNAVAILABLE: refused or cut before a replica took it).
RETRY_POLICY = json.dumps({"methodConfig": [{
    "name": [{"service": "mangaassist.v1.MangaAssist"}],
    "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"]}}]})


def _conversations() -> list[dict[str, Any]]:
    """The first two development conversations of each family (the held-out half stays a measurement)."""
    picked: dict[str, list[dict[str, Any]]] = {}
    for record in ow.load(ow.DEV):
        family = picked.setdefault(record["family"], [])
        if len(family) < 2:
            family.append(record)
    return [r for family in picked.values() for r in family]


CONVERSATIONS = _conversations()


class Cluster:
    """The three replicas and one round_robin channel over them; :meth:`call` says which replica took each call."""

    def __init__(self, replicas: list[Ensemble]) -> None:
        self.replicas = replicas
        first = replicas[0]
        self.auth = [("authorization", f"Bearer {first.token()}")]
        self.target = "ipv4:" + ",".join(self.address(i) for i in range(len(replicas)))
        self.channel = self._channel(self.target, [("grpc.lb_policy_name", "round_robin")])
        self.stub = pb_grpc.MangaAssistStub(self.channel)
        self.answered: dict[str, int] = {}  # request id -> replica, every Chat answered through this cluster

    def address(self, i: int) -> str:
        e = self.replicas[i]
        return f"127.0.0.1:{e.ports[e.view.ports['grpc']]}"

    def _channel(self, target: str, options: list[tuple[str, Any]]) -> grpc.Channel:
        options = [*options, ("grpc.ssl_target_name_override", f"{RELEASE}-ensemble.{NAMESPACE}.svc"),
                   ("grpc.service_config", RETRY_POLICY),
                   ("grpc.max_reconnect_backoff_ms", 1000)]  # a restarted replica is called again within a second
        return grpc.secure_channel(target, self.replicas[0].credentials(), options)

    def one(self, i: int) -> pb_grpc.MangaAssistStub:
        """A channel to replica ``i`` alone (the one-replica figure)."""
        return pb_grpc.MangaAssistStub(self._channel(self.address(i), []))

    def alive(self) -> list[int]:
        return [i for i, e in enumerate(self.replicas) if e.process.poll() is None]

    def _counts(self, method: str) -> dict[int, float]:
        return {i: self.replicas[i].metric("mangaassist_requests_total", method=method) for i in self.alive()}

    def call(self, method: str, request: Any, stub: Any = None) -> tuple[Any, int | None]:
        """(reply, replica that took it); a refusal raises grpc.RpcError with ``.replica`` set."""
        before = self._counts(method)
        try:
            reply, error = getattr(stub or self.stub, method)(request, metadata=self.auth, timeout=30), None
        except grpc.RpcError as err:
            reply, error = None, err
        for _ in range(50):  # counted before the reply is sent; a killed replica's count is unreadable
            after = self._counts(method)
            took = [i for i in after if after[i] > before.get(i, 0)]
            if took:
                break
            time.sleep(0.02)
        assert len(took) == 1, f"{method}: {len(took)} replicas counted one sequential call ({before} -> {after})"
        if error is not None:
            error.replica = took[0]
            raise error
        if method == "Chat":
            self.answered[reply.request_id] = took[0]
        return reply, took[0]

    def chat(self, message: str, session_id: str, customer_id: str = "", stub: Any = None) -> tuple[Any, int]:
        return self.call("Chat", pb.ChatRequest(message=message, session_id=session_id, customer_id=customer_id), stub)

    def ready(self) -> None:
        """Every replica connected: until then round_robin spreads calls over the subchannels already up."""
        for attempt in range(30):
            took = {self.chat("hello", f"warm-{attempt}-{n}")[1] for n in range(REPLICAS)}
            if len(took) == REPLICAS:
                return
        raise AssertionError("round_robin never reached all replicas")


@pytest.fixture(scope="module")
def stores():
    with RedisProcess() as redis_server, postgres.running_postgres() as dsn:
        yield redis_server, dsn


def _two_versions(root: Path) -> tuple[Path, Path]:
    """(the classifier's Triton model directory serving versions 1 and 2, the lifecycle directory whose registry holds
    1 as champion and 2 gated). Version 2 is version 1's file."""
    from google.protobuf import text_format

    from model_repository import spec
    from model_repository.lifecycle import versions
    from model_repository.lifecycle.registry import Registry, sha256_file

    built = CPU_REPOSITORY / VERSIONED_CLASSIFIER
    model = root / VERSIONED_CLASSIFIER
    (model / "2").mkdir(parents=True)
    (model / "1").symlink_to((built / "1").resolve())
    (model / "labels.txt").symlink_to((built / "labels.txt").resolve())
    (model / "2" / "model.onnx").symlink_to((built / "1" / "model.onnx").resolve())
    shutil.copy2(built / "1" / "model.py", model / "2" / "model.py")
    cfg = spec.parse_pbtxt((built / "config.pbtxt").read_text())
    cfg.version_policy.specific.versions[:] = [1, 2]
    (model / "config.pbtxt").write_text(text_format.MessageToString(cfg))
    registry = Registry(root / "lifecycle")
    versions.register_baseline(BUILD_DIR, CPU_REPOSITORY, registry)
    digest = sha256_file(model / "2" / "model.onnx")
    registry.log_version(VERSIONED_CLASSIFIER, "2", params={"source": "version 1's file (cluster test)"}, metrics={},
                         lineage={"parent": "1", "onnx_sha256": digest})
    registry.record_gate(VERSIONED_CLASSIFIER, "2", passed=True, checks=[], baseline="1", sha256=digest)
    return model, root / "lifecycle"


@pytest.fixture(scope="module")
def cluster(stores, tmp_path_factory):
    redis_server, dsn = stores
    classifier, lifecycle = _two_versions(tmp_path_factory.mktemp("classifier"))
    values = production_values()
    values["rollout"] = {"enabled": True, "pollSeconds": 1, "registry": {"existingClaim": LIFECYCLE_CLAIM},
                         "config": {"stable": "1"}}
    values["state"]["postgres"]["dsn"] = dsn  # the local PostgreSQL instead of RDS
    config = values["ensemble"]["config"]
    config["budgets"] = {**config.get("budgets", {}), **GENEROUS_BUDGETS}
    config["sessions"] = {"timeout_ms": 2000, "rate_per_s": 0.001, "rate_burst": SESSION_BURST}
    config["state"] = {"timeout_ms": 2000}
    config["rollout"] = {"guard_min_feedback": GUARD_MIN_FEEDBACK, "guard_min_requests": 1_000_000}
    secrets = {"mangaassist-ensemble-tls": tls_secret(tmp_path_factory.mktemp("tls")),
               "mangaassist-ensemble-auth": {"tokens": TOKENS},
               "mangaassist-triton-admin": {"admin-key": "cluster-admin-value"},
               "mangaassist-state-redis": {"url": redis_server.url},
               "mangaassist-state-postgres": {"password": "unused"}}  # the test server trusts local connections
    with helm_python.Chart.load(CHART) as chart:
        rendered = render(chart, values)
    assert rendered.values["ensemble"]["autoscaling"]["minReplicas"] == REPLICAS
    network = Network(rendered)
    triton, _, _ = start_rendered_triton(rendered, secrets, [network], tmp_path_factory.mktemp,
                                         models={VERSIONED_CLASSIFIER: classifier})
    deployment = {"renders": {"production": rendered}, "networks": {"production": network}, "secrets": secrets,
                  "claims": {LIFECYCLE_CLAIM: lifecycle}}
    replicas: list[Ensemble] = []
    made = None
    try:
        for i in range(REPLICAS):
            replicas.append(Ensemble("production", deployment, tmp_path_factory.mktemp(f"replica-{i}")).start())
        for e in replicas:
            e.wait_ready(timeout_s=180)
        made = Cluster(replicas)
        made.values = values
        made.ready()
        yield made
    finally:
        if made is not None:
            made.channel.close()
        for e in replicas:
            e.stop()
        triton.stop(timeout_s=10)


def _play(cluster: Cluster, conv: dict[str, Any], stub: Any = None) -> tuple[bool, list[int], Any]:
    session = f"{conv['id']}-{uuid.uuid4().hex[:6]}"
    took, reply = [], None
    for turn in conv["turns"]:
        reply, replica = cluster.chat(turn, session, conv["customer_id"], stub)
        assert "session_unavailable" not in reply.degraded, (conv["id"], reply.degraded)
        took.append(replica)
    return ow.judge(conv, reply.answer, list(reply.cards)), took, reply


def test_conversations_score_the_same_on_three_replicas_as_on_one(cluster):
    """Each conversation is played twice: on replica 0 alone, then through the round_robin channel, where every
    follow-up lands on another replica than the turn before it."""
    one = cluster.one(0)
    alone = {conv["id"]: _play(cluster, conv, one)[0] for conv in CONVERSATIONS}
    spread, moved, follow_ups = {}, 0, 0
    for conv in CONVERSATIONS:
        spread[conv["id"]], took, _ = _play(cluster, conv)
        follow_ups += len(took) - 1
        moved += sum(a != b for a, b in zip(took, took[1:]))
    assert moved == follow_ups, f"{moved} of {follow_ups} follow-ups changed replica: the test proves less"
    assert sum(alone.values()) >= len(CONVERSATIONS) - 1, f"one replica holds only {sum(alone.values())}: {alone}"
    lost = [cid for cid in alone if alone[cid] and not spread[cid]]
    assert not lost and sum(spread.values()) == sum(alone.values()), (
        f"three replicas {sum(spread.values())} of {len(CONVERSATIONS)}, one replica {sum(alone.values())}; "
        f"lost across replicas: {lost}")


def test_a_sessions_rate_limit_holds_across_replicas(cluster):
    session = f"noisy-{uuid.uuid4().hex[:6]}"
    took = [cluster.chat(f"hello {n}", session)[1] for n in range(SESSION_BURST)]
    assert len(set(took)) == REPLICAS, f"the session's calls did not reach every replica: {took}"
    with pytest.raises(grpc.RpcError) as refused:
        cluster.chat("and again", session)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value
    assert ("mangaassist-reason", "session_rate_limited") in (refused.value.trailing_metadata() or ())
    assert cluster.chat("hello", f"calm-{uuid.uuid4().hex[:6]}")[0].answer  # another session is not affected


def test_feedback_on_another_replica_is_recorded(cluster):
    moved, recorded = 0, 0
    for n in range(REPLICAS):
        session = f"fb-{n}-{uuid.uuid4().hex[:6]}"
        reply, answered = cluster.chat("is there a recent hardcover box set you would suggest", session)
        got, took = cluster.call("Feedback", pb.FeedbackRequest(request_id=reply.request_id, session_id=session,
                                                                kind=pb.FeedbackRequest.THUMBS_DOWN))
        moved += took != answered
        recorded += got.recorded
    assert moved == REPLICAS, "the feedback did not change replica: the test proves nothing"
    assert recorded == REPLICAS, f"{recorded} of {REPLICAS} feedbacks sent to another replica were recorded"


def test_the_traffic_log_holds_every_turn_of_every_replica_once(cluster, stores):
    import psycopg

    _, dsn = stores
    table = cluster.replicas[0].rendered.values["ensemble"]["config"].get("traffic", {}).get("table", "traffic")
    answered = dict(cluster.answered)
    assert set(answered.values()) == set(range(REPLICAS))
    logged: Counter = Counter()
    for _ in range(100):  # the writers are background tasks: wait until every replica has written what it answered
        with psycopg.connect(dsn) as conn:
            logged = Counter(r for (r,) in conn.execute(f"SELECT request_id FROM {table}"))
        if all(rid in logged for rid in answered):
            break
        time.sleep(0.1)
    by_replica = Counter(answered[rid] for rid in answered if logged[rid] == 1)
    assert by_replica == Counter(answered.values()), (
        f"turns in the log once, by the replica that answered: {dict(by_replica)} of {dict(Counter(answered.values()))}")
    twice = {rid: n for rid, n in logged.items() if n > 1}
    assert not twice, f"turns logged more than once: {twice}"


def _logged(dsn: str, table: str) -> Counter:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return Counter(r for (r,) in conn.execute(f"SELECT request_id FROM {table}"))


def test_chats_are_answered_while_postgresql_is_down_and_the_log_catches_up(cluster, stores):
    """PostgreSQL stopped: every chat is still answered; each replica's writer keeps the turns it cannot write in
    its bounded retry buffer (``mangaassist_traffic_retry_buffer``), never waits on them, drops none while the
    buffer has room; PostgreSQL back: the buffered turns and the next ones are each in the log exactly once."""
    _, dsn = stores
    table = "traffic"

    def summed(name: str, **labels: str) -> float:
        return sum(cluster.replicas[i].metric(name, **labels) for i in cluster.alive())

    dropped_before = summed("mangaassist_traffic_dropped_total", reason="store_error")
    with postgres.outage(dsn):
        during = {}
        for n in range(2 * REPLICAS):
            reply, replica = cluster.chat("is there a recent hardcover box set you would suggest", f"pg-down-{n}")
            assert reply.answer
            during[reply.request_id] = replica
        assert set(during.values()) == set(range(REPLICAS))
        for _ in range(150):  # a refused connection fails the write at once; the turns wait in the buffers
            if summed("mangaassist_traffic_retry_buffer") >= len(during):
                break
            time.sleep(0.1)
        assert summed("mangaassist_traffic_retry_buffer") == len(during), "turns buffered during the outage"
    after = {}
    for n in range(REPLICAS):
        reply, replica = cluster.chat("is there a recent hardcover box set you would suggest", f"pg-back-{n}")
        after[reply.request_id] = replica
    logged: Counter = Counter()
    wanted = {**during, **after}
    for _ in range(150):
        logged = _logged(dsn, table)
        if all(rid in logged for rid in wanted):
            break
        time.sleep(0.1)
    assert {rid: logged[rid] for rid in wanted} == dict.fromkeys(wanted, 1), "every turn, outage included, once"
    assert summed("mangaassist_traffic_retry_buffer") == 0
    assert summed("mangaassist_traffic_dropped_total", reason="store_error") == dropped_before


def _gauge(cluster: Cluster, name: str, **labels: str) -> list[float]:
    return [cluster.replicas[i].metric(name, **labels) for i in range(REPLICAS)]


def _until(what: str, predicate, show, timeout_s: float = 30.0) -> None:
    """A bound for a busy box, not a measurement (the replicas poll every ``rollout.pollSeconds``, 1 s here)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}: {show()}")
        time.sleep(0.1)


def _classifier_version(reply: Any) -> str:
    return dict(reply.model_versions).get(VERSIONED_CLASSIFIER, "")


def test_the_canary_guard_counts_the_clusters_feedback_and_its_rollback_holds_on_every_replica(cluster):
    """The rollout ConfigMap changes to stable 1 + canary 2 at 90% (written into every pod's mount, as the kubelet
    does; no pod restarts). Each canary answer gets a thumbs-down, sent through the round_robin channel -- so to
    another replica than the one that answered: every one is recorded, no replica takes ``guard_min_feedback`` of
    them, and still the guard trips (it judges the cluster's count). Every replica then serves stable only: its
    canary share is 0 and the canary's sessions are answered by version 1 on each replica called alone. Last, a
    replica whose file still names the canary (not the one that rolled back and rewrote its own) is restarted from
    the same rendered config: it starts on the canary from its file, reads the cluster's rollback and obeys it."""
    values = json.loads(json.dumps(cluster.values))
    values["rollout"]["config"] = {"stable": "1", "canary": CANARY}
    with helm_python.Chart.load(CHART) as chart:
        text = render(chart, values).get("ConfigMap", f"{RELEASE}-ensemble-rollout")["data"]["rollout.yaml"]
    files = []
    for e in cluster.replicas:  # the kubelet's sync: a new file swapped in with one rename
        path = e.root / e.rendered.values["rollout"]["mountPath"].lstrip("/") / "rollout.yaml"
        (path.parent / ".rollout.tmp").write_text(text)
        (path.parent / ".rollout.tmp").replace(path)
        files.append(path)
    canary = rollout_config.read(files[0])
    assert canary.canary == rollout_config.Canary(CANARY["version"], float(CANARY["percent"]))
    share = lambda: _gauge(cluster, "mangaassist_rollout_canary_percent")  # noqa: E731 -- per replica
    _until("every replica runs the canary", lambda: share() == [CANARY["percent"]] * REPLICAS, share)

    message = "is there a recent hardcover box set you would suggest"
    sent: list[tuple[int, int, bool]] = []  # (answered by, feedback taken by, recorded)
    for n in range(8 * GUARD_MIN_FEEDBACK):
        session = f"canary-{n}-{uuid.uuid4().hex[:6]}"
        reply, answered = cluster.chat(message, session)
        if _classifier_version(reply) != CANARY["version"]:
            continue
        got, took = cluster.call("Feedback", pb.FeedbackRequest(request_id=reply.request_id, session_id=session,
                                                                kind=pb.FeedbackRequest.THUMBS_DOWN))
        sent.append((answered, took, got.recorded))
        if len(sent) == GUARD_MIN_FEEDBACK:
            break
    assert len(sent) == GUARD_MIN_FEEDBACK, f"{len(sent)} canary answers in {8 * GUARD_MIN_FEEDBACK} chats"
    assert all(answered != took for answered, took, _ in sent), f"a feedback stayed on its replica: {sent}"
    assert sum(r for _, _, r in sent) == len(sent), f"{sum(r for _, _, r in sent)} of {len(sent)} recorded: {sent}"
    per_replica = Counter(took for _, took, _ in sent)
    assert max(per_replica.values()) < GUARD_MIN_FEEDBACK, f"one replica took enough to judge alone: {per_replica}"

    _until("the guard rolled back and every replica followed (canary share per replica)",
           lambda: share() == [0.0] * REPLICAS, share)
    assert _gauge(cluster, "mangaassist_rollout_changes_total", outcome="rolled_back") == [1.0] * REPLICAS
    sessions = [s for s in (f"after-{n}" for n in range(200)) if canary.version_for(s) == CANARY["version"]][:2]

    def answers_of(i: int) -> set[str]:
        stub = cluster.one(i)
        return {_classifier_version(cluster.chat(message, s, stub=stub)[0])
                for s in sessions}

    for i in range(REPLICAS):
        assert answers_of(i) == {"1"}, f"replica {i} answered the canary's sessions from {answers_of(i)}"

    # a restarted pod: its own file still names the canary; the cluster's decision (Redis) wins
    still = [i for i, path in enumerate(files) if rollout_config.read(path).canary is not None]
    assert still, "every replica rewrote its file: none can show that the shared decision is what a restart reads"
    restarted = cluster.replicas[still[0]]
    restarted.stop()
    restarted.start().wait_ready(timeout_s=180)
    assert restarted.metric("mangaassist_rollout_canary_percent") == 0.0
    assert restarted.metric("mangaassist_rollout_changes_total", outcome="rolled_back") == 1.0
    assert answers_of(still[0]) == {"1"}
    cluster.ready()  # the channel reaches the restarted replica again (the next test needs all three)


def test_a_conversation_goes_on_after_its_replica_is_killed(cluster):
    """Last: SIGKILL (no drain) of the replica that answered the conversation's last turn, then the next turn."""
    conv = next(c for c in CONVERSATIONS if len(c["turns"]) == 3 and c["expect"]["slot"] == "attribute")
    session = f"kill-{uuid.uuid4().hex[:6]}"
    took = [cluster.chat(turn, session, conv["customer_id"])[1] for turn in conv["turns"][:2]]
    victim = cluster.replicas[took[-1]]
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(timeout=10)
    reply, last = cluster.chat(conv["turns"][2], session, conv["customer_id"])
    assert last != took[-1]
    assert "session_unavailable" not in reply.degraded
    assert ow.judge(conv, reply.answer, list(reply.cards)), (conv["turns"], conv["expect"], took, reply.answer)
    # and the cluster goes on: new conversations on the two replicas left
    survivors = {cluster.chat("hello", f"after-{n}-{uuid.uuid4().hex[:6]}")[1] for n in range(4)}
    assert survivors == set(range(REPLICAS)) - {took[-1]}
