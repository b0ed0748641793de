"""The service process's lifecycle: its listeners, health, drain and signals; what runs, not what it is
built from (that is :mod:`server.app`, the composition root).

Health (``grpc.health.v1``) services:

- ``liveness``: SERVING while the process is up -- never depends on Triton or Bedrock, and stays SERVING
  while draining (restarting a draining pod helps no one). The one exception is an embedded Triton the
  supervisor gave up on (:mod:`server.supervisor`): a restart of the pod is then the only way back;
- ``readiness``, ``""`` and ``mangaassist.v1.MangaAssist``: follow the model backend's ``is_ready()`` (and
  the supervisor's view of the embedded Triton, which knows of a death before any call fails), re-checked
  every ``server.health_poll_s`` by a watcher task; NOT_SERVING for good once draining starts.

With ``server.health_port`` set (the Helm chart sets it when TLS is on), the same health statuses are also
served in plaintext on that port, alone: kubelet's gRPC probes cannot speak TLS.

Shutdown (SIGTERM/SIGINT, or :meth:`RunningServer.drain`): readiness -> NOT_SERVING, admission refuses new
requests (UNAVAILABLE, reason ``draining``), ``server.stop(grace)`` lets in-flight RPCs finish for up to
``server.drain_grace_s`` and then cancels what is left, the hallucination scoring queue drains for at most
its ``drain_timeout_s`` (5 s; what is left is counted as dropped), then the backend and tiers are closed,
and last the embedded Triton (if any) is stopped.

Readiness follows the backend's request-path models only: neither ``llm_small`` (big, slow to load; the
router falls back to the template tier while it is missing) nor the hallucination scorer (off the request
path; lexical fallback) can make the service unready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from mangaassist.v1 import mangaassist_pb2

from server.interceptors import Interceptors
from server.metrics import Metrics
from server.settings import ServerSettings, Settings

if TYPE_CHECKING:
    from server.app import Components
    from server.pipeline import Pipeline
    from server.supervisor import TritonSupervisor

log = logging.getLogger(__name__)

SERVICE_NAME = mangaassist_pb2.DESCRIPTOR.services_by_name["MangaAssist"].full_name
LIVENESS = "liveness"
READINESS = "readiness"
READY_SERVICES = ("", SERVICE_NAME, READINESS)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class _Health(HealthServicer):
    async def enter_graceful_shutdown(self) -> None:
        await super().enter_graceful_shutdown()
        await self._set(LIVENESS, SERVING)  # alive until the process exits


@dataclass
class Listener:
    """The gRPC server with its port already bound, not yet serving.

    ``mangaassist serve`` binds before it launches Triton: a port someone else holds fails the start in
    milliseconds instead of after Triton's start-up, and Triton's free-port picks (from the same ephemeral
    range as 50051) cannot take it in the meantime."""

    server: grpc.aio.Server
    port: int
    address: str
    metrics: Metrics
    interceptor: Interceptors | None = None  # the chain; its ``limiter`` counts admitted/refused calls
    options: tuple[tuple[str, int], ...] = ()  # the channel arguments the server was created with


def server_options(cfg: ServerSettings) -> tuple[tuple[str, int], ...]:
    """The gRPC core channel arguments of the service listener, from ``settings.server``."""
    return (
        ("grpc.max_receive_message_length", cfg.max_message_bytes),
        # off: with SO_REUSEPORT a second process on the same port would silently share its traffic
        ("grpc.so_reuseport", 0),
        # keepalive: the server's own pings find dead peers; enforcement turns away clients that ping too often
        ("grpc.keepalive_time_ms", cfg.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", cfg.keepalive_timeout_ms),
        ("grpc.keepalive_permit_without_calls", int(cfg.keepalive_permit_without_calls)),
        ("grpc.http2.min_ping_interval_without_data_ms", cfg.keepalive_min_ping_interval_ms),
        ("grpc.http2.max_ping_strikes", cfg.keepalive_max_ping_strikes),
        # connections age out so clients re-resolve and spread over pods the HPA adds
        *((("grpc.max_connection_age_ms", cfg.max_connection_age_ms),
           ("grpc.max_connection_age_grace_ms", cfg.max_connection_age_grace_ms)) if cfg.max_connection_age_ms > 0 else ()),
        *((("grpc.max_concurrent_streams", cfg.max_concurrent_streams),) if cfg.max_concurrent_streams > 0 else ()),
    )


def bind_listener(settings: Settings, metrics: Metrics | None = None) -> Listener:
    """Create the gRPC server with its interceptor and bind ``server.host:server.port`` (TLS when
    configured). Must run inside the event loop that will serve it."""
    metrics = metrics or Metrics()
    cfg = settings.server
    interceptor = Interceptors.from_settings(cfg, metrics)
    options = server_options(cfg)
    server = grpc.aio.server(interceptors=list(interceptor.chain), options=list(options))
    address = f"{cfg.host}:{cfg.port}"
    try:
        if cfg.tls_cert_file and cfg.tls_key_file:
            client_ca = Path(cfg.tls_client_ca_file).read_bytes() if cfg.tls_client_ca_file else None
            credentials = grpc.ssl_server_credentials(
                [(Path(cfg.tls_key_file).read_bytes(), Path(cfg.tls_cert_file).read_bytes())],
                root_certificates=client_ca,
                require_client_auth=client_ca is not None,
            )
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as err:  # grpc >= 1.5x raises instead of returning 0
        raise RuntimeError(f"could not bind {address}: {err} (is another process listening there?)") from err
    if port == 0:
        raise RuntimeError(f"could not bind {address}")
    return Listener(server, port, address.replace(f":{cfg.port}", f":{port}"), metrics, interceptor, options)


async def start_health_listener(health: _Health, address: str) -> tuple[grpc.aio.Server, int]:
    """A plaintext server with only grpc.health.v1 (the same servicer, so the same statuses), for kubelet
    probes when the service port is TLS: nothing else is reachable through it."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"could not bind the health port {address}")
    await server.start()
    return server, port


async def close_async(*resources: Any) -> None:
    """``await close()`` on each distinct resource that has an async one (LocalTier, TritonScoreFn)."""
    seen: set[int] = set()
    for resource in resources:
        close = getattr(resource, "close", None)
        if resource is None or id(resource) in seen or close is None or not asyncio.iscoroutinefunction(close):
            continue
        seen.add(id(resource))
        try:
            await close()
        except Exception as err:  # noqa: BLE001 -- closing at exit: log and go on
            log.info("closing %r failed: %r", resource, err)


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    pipeline: "Pipeline"
    health: _Health
    metrics: Metrics
    settings: Settings
    components: "Components"
    metrics_port: int | None = None
    health_port: int | None = None  # the plaintext health-only listener, when server.health_port >= 0
    _health_server: grpc.aio.Server | None = None
    _metrics_httpd: Any = None
    _watcher: asyncio.Task | None = None
    _drained: asyncio.Event = field(default_factory=asyncio.Event)
    _draining: bool = False
    scoring: Any | None = None  # the hallucination ScoringQueue (server/hallucination/worker.py)
    #: background jobs with an async ``stop()`` (the traffic log's writer, the drift and cost monitors), stopped
    #: at drain after the scoring queue, in reverse order
    jobs: list[Any] = field(default_factory=list)
    _warmup: asyncio.Task | None = None
    supervisor: "TritonSupervisor | None" = None  # the embedded Triton's (mangaassist serve), else None

    @property
    def target(self) -> str:
        return f"localhost:{self.port}"

    async def refresh_health(self) -> bool:
        """Check the backend once and publish the result (the watcher does this periodically)."""
        if self._draining:  # NOT_SERVING for good; a late supervisor event must not flip it back
            return False
        supervisor = self.supervisor
        if supervisor is not None and supervisor.gave_up:
            await self.health.set(LIVENESS, NOT_SERVING)  # only a new process can bring Triton back
        if supervisor is not None and not supervisor.up:
            ready = False  # known dead or restarting: no need to wait for a call to fail
        else:
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races completion
                async with asyncio.timeout(self.settings.server.health_poll_s):
                    ready = await self.components.backend.is_ready()
            except Exception as err:  # noqa: BLE001 -- a failing check means not ready
                log.info("readiness check failed: %r", err)
                ready = False
        for service in READY_SERVICES:
            await self.health.set(service, SERVING if ready else NOT_SERVING)
        return ready

    async def _watch(self) -> None:
        # the flag check makes the loop end even if a cancel is ever lost, so drain cannot hang on it
        while not self._draining:
            await asyncio.sleep(self.settings.server.health_poll_s)
            if not self._draining:
                await self.refresh_health()

    async def drain(self, grace_s: float | None = None) -> None:
        """Graceful shutdown; safe to call more than once (later calls wait for the first)."""
        if self._draining:
            await self._drained.wait()
            return
        self._draining = True
        grace = self.settings.server.drain_grace_s if grace_s is None else grace_s
        log.info("draining: refusing new requests, %.1fs grace for %d in flight", grace, self.pipeline.admission.in_flight)
        if self.supervisor is not None:
            self.supervisor.hold()  # a Triton dying now is not restarted
        await self.health.enter_graceful_shutdown()
        self.pipeline.admission.draining = True
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.wait({self._watcher}, timeout=max(1.0, 2 * self.settings.server.health_poll_s))
        # calls that reached the socket before the refusal began are picked up and refused (or answered) now;
        # left to server.stop they would be cancelled unanswered (seen in the drain test under load)
        await asyncio.sleep(min(self.settings.server.drain_settle_s, grace))
        await self.server.stop(grace)
        if self._health_server is not None:  # probes answer NOT_SERVING until the very end
            await self._health_server.stop(0)
        if self._warmup is not None:
            self._warmup.cancel()
            await asyncio.wait({self._warmup}, timeout=1.0)
        if self.scoring is not None:
            await self.scoring.stop(drain=True)  # bounded by its config.drain_timeout_s
            if self.scoring.review_store is not None:
                self.scoring.review_store.close()
        for job in reversed(self.jobs):
            with contextlib.suppress(Exception):
                await job.stop()
        await self.components.backend.close()
        await close_async(self.components.hallucination_score_fn, *self.components.tiers.values())
        for close in self.components.closers:
            with contextlib.suppress(Exception):
                close()
        if self._metrics_httpd is not None:
            self._metrics_httpd.shutdown()
            self._metrics_httpd.server_close()
        if self.supervisor is not None:
            await self.supervisor.stop()  # last: nothing calls Triton any more
        self._drained.set()
        log.info("drained")

    async def wait(self) -> None:
        await self.server.wait_for_termination()
        await self._drained.wait()
