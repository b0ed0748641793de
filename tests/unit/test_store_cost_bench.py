"""Smoke test of ``benchmarks/sessions/store_cost.py`` (the run itself lives in benchmarks/, not in CI)."""

from __future__ import annotations

import pytest
import redis

from benchmarks.sessions.redis_process import RedisProcess
from benchmarks.sessions.store_cost import render, summarise

pytestmark = pytest.mark.L0


def _run(store: str, chat: list[float], stage: list[float]) -> dict:
    return {"store": store, "sent": len(chat), "outcomes": {"OK": len(chat)},
            "samples": {"e2e_ms": chat, "stages_ms": {"session": stage}}}


def test_the_difference_is_redis_minus_in_process_pooled_over_rounds():
    runs = [_run("memory", [10.0] * 100, [0.1] * 100), _run("redis", [11.0] * 100, [0.6] * 100),
            _run("memory", [12.0] * 100, [0.1] * 100), _run("redis", [13.0] * 100, [0.6] * 100)]
    summary = summarise(runs)
    assert summary["pooled"]["memory"]["chats"] == 200
    assert summary["redis_minus_memory"]["session_stage_p99_ms"] == 0.5
    assert summary["redis_minus_memory"]["chat_p99_ms"] == 1.0
    text = render({"summary": summary, "command": "x", "device": {}, "rate": 40, "duration_s": 1, "rounds": 2})
    assert "redis - memory" in text and "0.500" in text


def test_the_benchmark_redis_answers():
    with RedisProcess() as server:
        assert redis.Redis.from_url(server.url).ping()
