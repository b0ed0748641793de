"""One settings section says where shared state lives (issue 24): ``state.backend`` picks every store's home --
sessions and limits, the review queue, the traffic log -- no store has a switch of its own."""

from __future__ import annotations

import pytest

from server.settings import Settings, load_settings

pytestmark = pytest.mark.L0


def test_memory_is_the_default_and_every_store_is_in_process(tmp_path):
    from server.hallucination.review import ReviewQueue, build_review_queue
    from server.sessions.store import MemorySessionStore, build_session_store
    from server.traffic.store import SQLiteTrafficStore, open_store

    s = Settings().replace(traffic={"sqlite_path": str(tmp_path / "t.db")})
    assert s.state.backend == "memory" and not s.state.shared
    assert isinstance(build_session_store(s), MemorySessionStore)
    assert isinstance(build_review_queue(s, ":memory:"), ReviewQueue)
    store = open_store(s)
    assert isinstance(store, SQLiteTrafficStore)
    store.close()


def test_redis_moves_every_store_to_redis_and_postgres():
    from server.hallucination.review import RedisReviewQueue, build_review_queue
    from server.sessions.store import RedisSessionStore, build_session_store
    from server.traffic import store as traffic_store

    s = Settings().replace(state={"backend": "redis", "redis_url": "redis://10.1.2.3:6390/2",
                                  "postgres_dsn": "host=pg.internal dbname=x"})
    sessions = build_session_store(s)
    assert isinstance(sessions, RedisSessionStore)
    assert sessions._redis.connection_pool.connection_kwargs["host"] == "10.1.2.3"  # no connection is opened
    assert isinstance(build_review_queue(s, ":memory:"), RedisReviewQueue)
    opened = []
    real = traffic_store.PostgresTrafficStore
    traffic_store.PostgresTrafficStore = lambda dsn, table: opened.append(dsn)  # type: ignore[assignment]
    try:
        traffic_store.open_store(s)
    finally:
        traffic_store.PostgresTrafficStore = real  # type: ignore[assignment]
    assert opened == ["host=pg.internal dbname=x"]


def test_disabled_stores_and_bad_backends():
    from server.sessions.store import build_session_store
    from server.traffic.store import open_store

    s = Settings().replace(state={"backend": "redis"}, sessions={"enabled": False}, traffic={"enabled": False})
    assert build_session_store(s) is None and open_store(s) is None
    with pytest.raises(ValueError, match="state.backend must be memory|redis"):
        Settings().replace(state={"backend": "cluster"})
    with pytest.raises(ValueError, match="unknown setting sessions.backend"):
        Settings().replace(sessions={"backend": "redis"})  # the old per-store switch is gone, loudly


def test_the_environment_selects_the_cluster():
    s = load_settings(env={"MANGAASSIST_STATE_BACKEND": "redis", "MANGAASSIST_STATE_REDIS_URL": "redis://r:1/0"})
    assert s.state.shared and s.state.redis_url == "redis://r:1/0"


async def test_an_unreachable_feedback_store_never_fails_a_chat():
    """Redis down: the answer is still attributed on its own replica; another replica's answer is recorded=false."""
    import asyncio

    from benchmarks.sessions.redis_process import free_port
    from server.rollout.feedback import SharedFeedbackStore

    store = SharedFeedbackStore(f"redis://127.0.0.1:{free_port()}/0", timeout_ms=50)
    try:  # a hang ends in wait_for's TimeoutError instead: fails by its type
        await asyncio.wait_for(store.aremember("r1", "s1", versions={"m": "1"}), 30)
        assert (await asyncio.wait_for(store.arecord("r1", "s1", "thumbs_up"), 30)) is not None  # local copy
        assert (await asyncio.wait_for(store.arecord("r-other", "s2", "thumbs_up"), 30)) is None
        assert store.unavailable == 2
    finally:
        await store.aclose()
