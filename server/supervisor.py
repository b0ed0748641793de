"""Supervision of the embedded tritonserver that ``mangaassist serve`` launches.

Without it, a tritonserver killed under the service (``kill -9``, the OOM killer) stayed dead: readiness
went NOT_SERVING for good while liveness stayed SERVING (so Kubernetes never restarted the pod), and the
unreaped zombie kept its python-backend stubs alive (13 of them, 2.75 GiB, issue 13).

What happens on a death (the process's pidfd turns readable at once; no polling):

1. readiness goes NOT_SERVING (``on_change``: the server re-checks health now, not at its next poll);
   chats degrade meanwhile the way they do whenever Triton is unreachable (rules, templates, breakers);
2. the whole process group is SIGKILLed before the leader is reaped, so every stub dies with it
   (:meth:`~server.triton_runtime.TritonServer.reap`);
3. a new tritonserver starts on the same ports (the service's channel keeps its address) after a back-off
   doubling from ``server.triton_restart_backoff_s`` to ``..._max_s``; the request-path models are warmed
   (``warm_up``) and readiness returns to SERVING;
4. after ``server.triton_restart_attempts`` restarts without ``server.triton_stable_s`` of uptime in
   between, it gives up: liveness goes NOT_SERVING too, and the pod is restarted.

The process is spawned from the event loop's thread: its PR_SET_PDEATHSIG follows the spawning thread, and
the loop's lives as long as the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Awaitable, Callable

from server.settings import ServerSettings
from server.triton_runtime import TritonServer, TritonStartupError

log = logging.getLogger(__name__)


class TritonSupervisor:
    """Keeps one :class:`TritonServer` running; its ``state`` is one of starting / up / restarting / gave_up
    / stopped."""

    def __init__(self, triton: TritonServer, cfg: ServerSettings) -> None:
        self.triton = triton
        self.cfg = cfg
        self.state = "starting"
        #: awaited after every state change (the server sets its health re-check here)
        self.on_change: Callable[[], Awaitable[Any]] | None = None
        #: awaited after a restart, before the state is ``up`` (the server warms the request-path models)
        self.warm_up: Callable[[], Awaitable[Any]] | None = None
        self.deaths = 0
        self.restarts = 0  # successful ones
        self.stubs_killed = 0
        self._failures = 0  # restarts since Triton last stayed up triton_stable_s
        self._up_since = 0.0
        self._held = False
        self._task: asyncio.Task | None = None

    @property
    def up(self) -> bool:
        return self.state == "up"

    @property
    def gave_up(self) -> bool:
        return self.state == "gave_up"

    async def start(self) -> None:
        """The first start (no retries: a repository that cannot load is a start-up error, not a crash)."""
        try:
            self.triton.spawn()  # in the loop's thread (PDEATHSIG)
            await asyncio.to_thread(self.triton.wait_ready, self.cfg.triton_startup_timeout_s)
        except BaseException:
            await asyncio.to_thread(self.triton.stop)
            self.state = "stopped"
            raise
        self._up_since = asyncio.get_running_loop().time()
        self.state = "up"
        self._task = asyncio.create_task(self._supervise(), name="triton-supervisor")

    def hold(self) -> None:
        """No more restarts (the service is draining); Triton keeps running until :meth:`stop`."""
        self._held = True

    async def stop(self) -> None:
        """Stop supervising and stop Triton gracefully. Idempotent."""
        self._held = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self.state != "stopped":
            self.state = "stopped"
            await asyncio.to_thread(self.triton.stop)

    # ------------------------------------------------------------------ internals
    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.triton.wait_exit()
            if self._held:
                return
            self.deaths += 1
            how = self.triton.exit_status()
            self.state = "restarting"
            await self._notify()
            _, stubs = await asyncio.to_thread(self.triton.reap)
            self.stubs_killed += len(stubs)
            log.warning("tritonserver died (%s); readiness NOT_SERVING, killed the %d python-backend stubs it left",
                        how, len(stubs))
            if loop.time() - self._up_since >= self.cfg.triton_stable_s:
                self._failures = 0
            if not await self._restart():
                return

    async def _restart(self) -> bool:
        loop = asyncio.get_running_loop()
        while not self._held:
            if self._failures >= self.cfg.triton_restart_attempts:
                self.state = "gave_up"
                log.error("tritonserver failed %d restarts in a row; giving up: liveness NOT_SERVING (restart the pod)",
                          self._failures)
                await self._notify()
                return False
            delay = min(self.cfg.triton_restart_backoff_s * 2 ** self._failures, self.cfg.triton_restart_backoff_max_s)
            self._failures += 1
            log.info("restarting tritonserver in %.1fs (attempt %d of %d)", delay, self._failures,
                     self.cfg.triton_restart_attempts)
            await asyncio.sleep(delay)
            if self._held:
                break
            try:
                self.triton.respawn()  # in the loop's thread (PDEATHSIG)
                await asyncio.to_thread(self.triton.wait_ready, self.cfg.triton_startup_timeout_s)
            except (TritonStartupError, OSError) as err:
                log.warning("tritonserver restart failed: %s", str(err).splitlines()[0])
                await asyncio.to_thread(self.triton.reap)
                continue
            if self.warm_up is not None:
                with contextlib.suppress(Exception):
                    await self.warm_up()
            self.restarts += 1
            self._up_since = loop.time()
            self.state = "up"
            log.info("tritonserver back after restart %d; readiness follows", self.restarts)
            await self._notify()
            return True
        return False

    async def _notify(self) -> None:
        if self.on_change is not None:
            try:
                await self.on_change()
            except Exception as err:  # noqa: BLE001 -- a health publish must not stop supervision
                log.info("health update after a Triton event failed: %r", err)
