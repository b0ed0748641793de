"""The traffic log's two stores behave alike: SQLite (embedded default) and a real PostgreSQL 15 (started once
for this module; scripts/setup.sh installs Debian's postgresql; without it the module skips, or fails under CI)."""

from __future__ import annotations

import pytest

from benchmarks import postgres_process as postgres
from server.traffic.record import TrafficRecord
from server.traffic.store import PostgresTrafficStore, SQLiteTrafficStore, write_all
from tests.support.requirements import require

pytestmark = pytest.mark.L0


@pytest.fixture(scope="module")
def pg_dsn():
    reason = postgres.skip_reason()
    require("postgresql", reason is None, reason or "")
    with postgres.running_postgres() as dsn:
        yield dsn


_TABLES = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", "postgres"])
def traffic_store(request, tmp_path):
    if request.param == "sqlite":
        s = SQLiteTrafficStore(str(tmp_path / "traffic.db"))
    else:
        s = PostgresTrafficStore(request.getfixturevalue("pg_dsn"), table=f"traffic_{next(_TABLES)}")
    yield s
    s.close()


def rec(ts: float, rid: str = "", **kw) -> TrafficRecord:
    return TrafficRecord(ts=ts, request_id=rid or f"r{ts:g}", **kw)


def test_round_trip_keeps_every_field(traffic_store):
    r = rec(1000.5, "req-1", session_hash="abc", model_versions={"intent_classifier": "3"}, intent="return_refund",
            confidence=0.61, rule_decided=False, tier="small", model="smollm2", timings_ms={"classify": 4.2, "answer": 80.0},
            degraded=("rerank_skipped",), guardrails=("pii:redacted",), message="my email is [EMAIL]",
            sketch=(0.1, -0.25, 0.5), input_tokens=120, output_tokens=30, cost_usd=0.0012, blocked=False, stream=True)
    traffic_store.write([r])
    assert traffic_store.records() == [r]


def test_window_query_is_half_open_and_ordered(traffic_store):
    write_all(traffic_store, [rec(t) for t in (5.0, 1.0, 3.0, 4.0, 2.0)])
    assert [r.ts for r in traffic_store.records(2.0, 4.0)] == [2.0, 3.0]
    assert [r.ts for r in traffic_store.records()] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_prune_applies_retention_then_the_row_bound(traffic_store):
    write_all(traffic_store, [rec(float(t)) for t in range(10)])
    assert traffic_store.prune(older_than=3.0, max_rows=100) == 3  # ts 0, 1, 2: past retention
    assert traffic_store.prune(older_than=3.0, max_rows=4) == 3  # keep the 4 newest of 7
    assert [r.ts for r in traffic_store.records()] == [6.0, 7.0, 8.0, 9.0]
    assert traffic_store.prune(older_than=0.0, max_rows=4) == 0
    assert traffic_store.count() == 4


def test_feedback_attaches_to_the_logged_turn(traffic_store):
    traffic_store.write([rec(1.0, "a"), rec(2.0, "b")])
    assert traffic_store.set_feedback("b", "down")
    assert not traffic_store.set_feedback("missing", "up")
    assert [r.feedback for r in traffic_store.records()] == ["", "down"]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_hallucination_score_attaches_and_an_older_table_gains_its_column(backend, tmp_path, request):
    """A table created before the ``hallucination`` column (the reversal triggers read it) is upgraded at open."""
    old_columns = "ts DOUBLE PRECISION NOT NULL, request_id text, intent text"
    if backend == "sqlite":
        import sqlite3

        path = str(tmp_path / "old.db")
        with sqlite3.connect(path) as db:
            db.execute(f"CREATE TABLE traffic (id INTEGER PRIMARY KEY AUTOINCREMENT, {old_columns})")
            db.execute("INSERT INTO traffic (ts, request_id, intent) VALUES (1.0, 'old', 'chitchat')")
        open_store = lambda: SQLiteTrafficStore(path)  # noqa: E731
    else:
        import psycopg

        dsn, table = request.getfixturevalue("pg_dsn"), f"traffic_{next(_TABLES)}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, {old_columns})")
            conn.execute(f"INSERT INTO {table} (ts, request_id, intent) VALUES (1.0, 'old', 'chitchat')")
        open_store = lambda: PostgresTrafficStore(dsn, table=table)  # noqa: E731
    store = open_store()
    store.write([rec(2.0, "new", intent="recommendation")])
    assert store.set_hallucination("new", 0.82) and not store.set_hallucination("missing", 0.1)
    assert [(r.request_id, r.hallucination) for r in store.records()] == [("old", None), ("new", 0.82)]
    store.close()
    store = open_store()  # opening an upgraded table again changes nothing
    assert store.records()[-1].hallucination == 0.82
    store.close()


def test_postgres_reconnects_after_the_server_drops_the_connection(pg_dsn):
    import psycopg

    s = PostgresTrafficStore(pg_dsn, table="traffic_reconnect")
    s.write([rec(1.0)])
    with psycopg.connect(pg_dsn, autocommit=True) as admin:  # kill our session from outside
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                      "AND datname = current_database()")
    with pytest.raises(psycopg.OperationalError):
        s.write([rec(2.0)])  # this batch is lost (the recorder counts it), the next one reconnects
    s.write([rec(3.0)])
    assert [r.ts for r in s.records()] == [1.0, 3.0]
    s.close()


def test_a_window_can_be_read_as_a_bounded_uniform_sample(traffic_store):
    write_all(traffic_store, [rec(float(t)) for t in range(1000)])
    sample = traffic_store.records(100.0, 900.0, limit=50, sample=True)
    ts = [r.ts for r in sample]
    assert len(ts) == 50 and ts == sorted(ts) and all(100.0 <= t < 900.0 for t in ts)
    assert max(ts) > 500.0  # spread over the window, not its first 50 rows
    assert [r.ts for r in traffic_store.records(100.0, 900.0, limit=3)] == [100.0, 101.0, 102.0]
