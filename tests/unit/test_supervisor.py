"""TritonSupervisor's decisions without a tritonserver: restart with doubling back-off, give up after the
configured attempts (liveness NOT_SERVING through RunningServer.refresh_health), no restart while draining.
The real process is tests/e2e/test_triton_supervision.py's."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from server.lifecycle import LIVENESS, NOT_SERVING, READINESS, SERVING, RunningServer, _Health
from server.settings import ServerSettings
from server.supervisor import TritonSupervisor
from server.triton_runtime import TritonStartupError

pytestmark = pytest.mark.L0


class FakeTriton:
    """Dies on demand; ``respawn`` fails ``fail_starts`` times, then works."""

    def __init__(self, fail_starts: int = 0) -> None:
        self.fail_starts = fail_starts
        self.spawned = self.reaped = self.stopped = 0
        self._dead = asyncio.Event()

    def spawn(self) -> None:
        self.spawned += 1

    respawn = spawn

    def wait_ready(self, timeout_s: float) -> None:
        if self.spawned > 1 and self.fail_starts:
            self.fail_starts -= 1
            raise TritonStartupError("exited during start-up")
        self._dead = asyncio.Event()

    async def wait_exit(self) -> None:
        await self._dead.wait()

    def die(self) -> None:
        self._dead.set()

    def exit_status(self) -> str:
        return "killed by SIGKILL"

    def reap(self) -> tuple[int, list[tuple[int, str]]]:
        self.reaped += 1
        return -9, [(1, "triton_python_b")]

    def stop(self) -> None:
        self.stopped += 1


def _cfg(**kw) -> ServerSettings:
    return ServerSettings(triton_restart_backoff_s=0.01, triton_restart_backoff_max_s=0.04, **kw)


async def _until(predicate, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_a_death_is_reaped_and_restarted_then_up():
    triton = FakeTriton(fail_starts=2)
    sup = TritonSupervisor(triton, _cfg(triton_restart_attempts=3))
    events: list[str] = []
    sup.on_change = lambda: asyncio.sleep(0, events.append(sup.state))
    await sup.start()
    triton.die()
    await _until(lambda: sup.restarts == 1)
    assert sup.up and triton.reaped == 3 and sup.stubs_killed == 1  # the death + two failed starts
    assert events == ["restarting", "up"]
    await sup.stop()
    assert triton.stopped == 1 and sup.state == "stopped"


async def test_gives_up_after_the_attempts_and_liveness_goes_not_serving():
    triton = FakeTriton(fail_starts=99)
    sup = TritonSupervisor(triton, _cfg(triton_restart_attempts=2))
    await sup.start()
    health = _Health()
    await health.set(LIVENESS, SERVING)
    running = RunningServer(server=None, port=0, pipeline=None, health=health, metrics=None, settings=SimpleNamespace(),
                            components=None, supervisor=sup)
    sup.on_change = running.refresh_health
    triton.die()
    await _until(lambda: sup.gave_up)
    assert triton.spawned == 3  # the first start + 2 attempts
    assert health._server_status[LIVENESS] == NOT_SERVING
    assert health._server_status[READINESS] == NOT_SERVING
    await sup.stop()


async def test_no_restart_once_held_for_the_drain():
    triton = FakeTriton()
    sup = TritonSupervisor(triton, _cfg())
    await sup.start()
    sup.hold()
    triton.die()
    await asyncio.sleep(0.05)
    assert triton.spawned == 1 and sup.restarts == 0
    await sup.stop()
    assert triton.stopped == 1
