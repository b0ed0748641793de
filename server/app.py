"""Build and run the gRPC server: servicer + interceptor + health + reflection + metrics + drain.

Health (``grpc.health.v1``) services:

- ``liveness``: SERVING while the process is up -- never depends on Triton or Bedrock, and stays SERVING
  while draining (restarting a draining pod helps no one);
- ``readiness``, ``""`` and ``mangaassist.v1.MangaAssist``: follow the model backend's ``is_ready()``,
  re-checked every ``server.health_poll_s`` by a watcher task; NOT_SERVING for good once draining starts.

With ``server.health_port`` set (the Helm chart sets it when TLS is on), the same health statuses are also
served in plaintext on that port, alone: kubelet's gRPC probes cannot speak TLS.

Shutdown (SIGTERM/SIGINT, or :meth:`RunningServer.drain`): readiness -> NOT_SERVING, admission refuses new
requests (UNAVAILABLE, reason ``draining``), ``server.stop(grace)`` lets in-flight RPCs finish for up to
``server.drain_grace_s`` and then cancels what is left, the hallucination scoring queue drains for at most
its ``drain_timeout_s`` (5 s; what is left is counted as dropped), then the backend and tiers are closed.

Readiness follows the backend's request-path models only: neither ``llm_small`` (big, slow to load; the
router falls back to the template tier while it is missing) nor the hallucination scorer (off the request
path; lexical fallback) can make the service unready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from mangaassist.v1 import mangaassist_pb2, mangaassist_pb2_grpc

from model_repository.contract import EMBED_DIM
from server.admission import Admission
from server.backends.base import ModelBackend
from server.guardrails.base import Guardrails, PassThroughGuardrails
from server.interceptors import ServiceInterceptor
from server.llm.base import LLMTier
from server.llm.router import TierRouter
from server.llm.templates import TemplateTier
from server.metrics import Metrics
from server.pipeline import Pipeline, RuleMatcher
from server.retrieval.base import Product, ScoredChunk, VectorIndex
from server.servicer import MangaAssistServicer
from server.settings import Settings
from server.stages.retrieve import Catalog
from server.telemetry import setup_tracing

log = logging.getLogger(__name__)

SERVICE_NAME = mangaassist_pb2.DESCRIPTOR.services_by_name["MangaAssist"].full_name
LIVENESS = "liveness"
READINESS = "readiness"
READY_SERVICES = ("", SERVICE_NAME, READINESS)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Components:
    """Everything the pipeline talks to. Tests inject fakes; :func:`build_components` builds the real ones."""

    backend: ModelBackend
    catalog: Catalog
    index: VectorIndex
    guardrails: Guardrails
    tiers: Mapping[str, LLMTier] = field(default_factory=dict)  # "small" / "large"; template is built in
    rules: RuleMatcher | None = None  # None -> server.stages.rules.match
    #: (sources, claims) -> logits for async hallucination scoring (server/hallucination); None = off
    hallucination_score_fn: Any | None = None
    closers: list[Callable[[], Any]] = field(default_factory=list)  # sync close() callables, run at exit


class _Health(HealthServicer):
    async def enter_graceful_shutdown(self) -> None:
        await super().enter_graceful_shutdown()
        await self._set(LIVENESS, SERVING)  # alive until the process exits


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    pipeline: Pipeline
    health: _Health
    metrics: Metrics
    settings: Settings
    components: Components
    metrics_port: int | None = None
    health_port: int | None = None  # the plaintext health-only listener, when server.health_port >= 0
    _health_server: grpc.aio.Server | None = None
    _metrics_httpd: Any = None
    _watcher: asyncio.Task | None = None
    _drained: asyncio.Event = field(default_factory=asyncio.Event)
    _draining: bool = False
    scoring: Any | None = None  # the hallucination ScoringQueue (server/hallucination/worker.py)
    _warmup: asyncio.Task | None = None

    @property
    def target(self) -> str:
        return f"localhost:{self.port}"

    async def refresh_health(self) -> bool:
        """Check the backend once and publish the result (the watcher does this periodically)."""
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
        await self.health.enter_graceful_shutdown()
        self.pipeline.admission.draining = True
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.wait({self._watcher}, timeout=max(1.0, 2 * self.settings.server.health_poll_s))
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
        await self.components.backend.close()
        await _close_async(self.components.hallucination_score_fn, *self.components.tiers.values())
        for close in self.components.closers:
            with contextlib.suppress(Exception):
                close()
        if self._metrics_httpd is not None:
            self._metrics_httpd.shutdown()
            self._metrics_httpd.server_close()
        self._drained.set()
        log.info("drained")

    async def wait(self) -> None:
        await self.server.wait_for_termination()
        await self._drained.wait()


def build_pipeline(settings: Settings, components: Components, metrics: Metrics, scoring: Any | None = None) -> Pipeline:
    template = TemplateTier(components.catalog.get_order)
    return Pipeline(
        settings,
        components.backend,
        catalog=components.catalog,
        index=components.index,
        guardrails=components.guardrails,
        router=TierRouter(template, components.tiers),
        metrics=metrics,
        admission=Admission(settings.server.max_concurrency, metrics),
        rules=components.rules,
        scoring=scoring,
    )


def build_scoring(settings: Settings, components: Components, metrics: Metrics) -> Any | None:
    """The async hallucination scoring queue (not started), or None when scoring is off."""
    g = settings.guardrails
    if components.hallucination_score_fn is None or g.hallucination_scoring == "off":
        return None
    from server.hallucination import build_scoring_queue

    return build_scoring_queue(
        settings, components.hallucination_score_fn, metrics=metrics, catalog=components.catalog,
        review_db=g.hallucination_review_db, maxsize=g.hallucination_queue_size,
    )


async def _close_async(*resources: Any) -> None:
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


async def _start_health_listener(health: _Health, address: str) -> tuple[grpc.aio.Server, int]:
    """A plaintext server with only grpc.health.v1 (the same servicer, so the same statuses), for kubelet
    probes when the service port is TLS: nothing else is reachable through it."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"could not bind the health port {address}")
    await server.start()
    return server, port


async def start_server(settings: Settings, components: Components, *, serve_metrics: bool = True) -> RunningServer:
    """Build and start the server; returns once it accepts connections (port 0 -> a free port)."""
    metrics = Metrics()
    scoring = build_scoring(settings, components, metrics)
    pipeline = build_pipeline(settings, components, metrics, scoring)
    cfg = settings.server
    server = grpc.aio.server(
        interceptors=[ServiceInterceptor(tokens=cfg.auth_tokens, exempt_prefixes=cfg.auth_exempt_prefixes, metrics=metrics)],
        options=[
            ("grpc.max_receive_message_length", cfg.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    mangaassist_pb2_grpc.add_MangaAssistServicer_to_server(MangaAssistServicer(pipeline), server)
    health = _Health()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    address = f"{cfg.host}:{cfg.port}"
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
    if port == 0:
        raise RuntimeError(f"could not bind {address}")

    running = RunningServer(server, port, pipeline, health, metrics, settings, components, scoring=scoring)
    if scoring is not None:
        scoring.start()
    await health.set(LIVENESS, SERVING)
    await running.refresh_health()
    if serve_metrics and cfg.metrics_port >= 0:
        running._metrics_httpd, running.metrics_port = metrics.serve_http(cfg.metrics_port)
    if cfg.health_port >= 0:
        running._health_server, running.health_port = await _start_health_listener(health, f"{cfg.host}:{cfg.health_port}")
    await server.start()
    running._watcher = asyncio.create_task(running._watch(), name="readiness-watcher")
    log.info("MangaAssist serving on %s (metrics port %s, health port %s)", address.replace(f":{cfg.port}", f":{port}"),
             running.metrics_port, running.health_port)
    return running


# ------------------------------------------------------------------------------------------ real wiring
class EmptyCatalog:
    """Used with ``--fake-backend`` when no catalog has been built: every lookup misses."""

    def get_product(self, asin: str) -> Product | None:
        return None

    def find_products(self, text: str, limit: int = 3) -> list[Product]:
        return []

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        return None

    def series_names(self) -> list[Any]:
        return []

    def series_products(self, series: str) -> list[Product]:
        return []

    def script_mentions(self, text: str) -> list[Any]:
        return []

    def products_by_genre(self, genres: Any, limit: int, exclude_series: str | None = None) -> list[Product]:
        return []

    def series_genres(self, series: str) -> tuple[str, ...]:
        return ()

    def search_policies(self, text: str, limit: int) -> list[Any]:
        return []


class EmptyIndex:
    dim = EMBED_DIM

    def add(self, chunks: Any, vectors: Any) -> None:
        raise NotImplementedError("EmptyIndex is read-only")

    def search(self, query: Any, k: int) -> list[ScoredChunk]:
        return []

    def __len__(self) -> int:
        return 0


def build_components(settings: Settings, *, fake_backend: bool = False) -> Components:
    """The production wiring: Triton backend, SQLite catalog, FAISS/Milvus index, guardrail suite, LLM tiers.

    With ``fake_backend`` the deterministic in-process backend replaces Triton, and a missing catalog or
    index is replaced by an empty one (with a warning) so the service starts on a bare checkout.
    """
    from server.backends.client import TritonClient
    from server.backends.fake import FakeBackend
    from server.backends.triton import TritonBackend

    rcfg = settings.retrieval
    closers: list[Callable[[], Any]] = []
    # One Triton client for every model call (request path, LLM tier, hallucination scorer): one channel,
    # one breaker per model, one error mapping. The backend closes it at drain, after the tiers and scorer.
    triton = TritonClient(settings.triton)
    backend: ModelBackend = FakeBackend() if fake_backend else TritonBackend(settings.triton, triton=triton)

    catalog: Catalog
    if Path(rcfg.catalog_db).is_file() or not fake_backend:
        from server.retrieval.store import CatalogStore

        store = CatalogStore(rcfg.catalog_db)
        closers.append(store.close)
        catalog = store
    else:
        log.warning("no catalog at %s: serving with an empty catalog", rcfg.catalog_db)
        catalog = EmptyCatalog()

    index: VectorIndex
    location = rcfg.index_dir if rcfg.backend == "faiss" else rcfg.milvus_uri
    if Path(location).exists() or not fake_backend:
        from server.retrieval.index_builder import load_index

        if rcfg.backend == "milvus":
            index = load_index("milvus", location, collection=rcfg.milvus_collection)
        else:
            index = load_index("faiss", location)
        if hasattr(index, "close"):
            closers.append(index.close)
    else:
        log.warning("no %s index at %s: retrieval returns nothing", rcfg.backend, location)
        index = EmptyIndex()

    guardrails: Guardrails = PassThroughGuardrails()
    if settings.guardrails.enabled:
        from server.guardrails.suite import GuardrailConfig, GuardrailSuite

        g = settings.guardrails
        overrides: dict[str, Any] = {"redact_output_pii": g.redact_output_pii}
        if g.injection_threshold is not None:
            overrides["injection_threshold"] = g.injection_threshold
        if g.competitors is not None:
            overrides["competitors"] = dict(g.competitors)
        guardrails = GuardrailSuite(catalog, GuardrailConfig(**overrides))

    tiers = build_tiers(settings, catalog, fake_backend=fake_backend, triton=triton)
    return Components(
        backend=backend, catalog=catalog, index=index, guardrails=guardrails, tiers=tiers, closers=closers,
        hallucination_score_fn=build_hallucination_score_fn(settings, fake_backend=fake_backend, triton=triton),
    )


def _repository_has(settings: Settings, model: str) -> bool:
    return (settings.paths.triton_repository / model / "config.pbtxt").is_file()


def build_tiers(
    settings: Settings, catalog: Any, *, fake_backend: bool = False, triton: Any | None = None
) -> dict[str, LLMTier]:
    """small: the local SmolLM2 on Triton when available (``llm.local_tier``), else Bedrock's small model;
    large: Bedrock when configured (``llm.enabled``), else the same local tier. Whichever answers, the
    response's ``tier`` and ``model`` fields say so (e.g. ``small`` / ``smollm2-135m-instruct``).
    ``triton``: the shared :class:`~server.backends.client.TritonClient` the local tier calls through."""
    llm = settings.llm
    local: LLMTier | None = None
    if llm.local_tier == "on" or (llm.local_tier == "auto" and not fake_backend and _repository_has(settings, llm.local_model)):
        from server.llm.local import LocalTier

        local = LocalTier("small", settings.triton.url, llm.local_model, catalog=catalog, triton=triton)
    tiers: dict[str, LLMTier] = {}
    if llm.enabled:
        from server.llm.bedrock import BedrockTier

        if local is None:
            tiers["small"] = BedrockTier(
                "small", llm.small_model_id, llm.bedrock_region,
                {"input": llm.small_input_usd_per_1k, "output": llm.small_output_usd_per_1k},
                max_attempts=llm.max_attempts, catalog=catalog,
            )
        tiers["large"] = BedrockTier(
            "large", llm.large_model_id, llm.bedrock_region,
            {"input": llm.large_input_usd_per_1k, "output": llm.large_output_usd_per_1k},
            max_attempts=llm.max_attempts, catalog=catalog,
        )
    if local is not None:
        tiers["small"] = local
        tiers.setdefault("large", local)  # no Bedrock: "large" intents are answered by the local model
    return tiers


def build_hallucination_score_fn(
    settings: Settings, *, fake_backend: bool = False, triton: Any | None = None
) -> Any | None:
    """The scorer's backend (``guardrails.hallucination_scoring``): Triton's ``hallucination_scorer``
    ensemble with the lexical scorer as fallback while it is missing or down, or the lexical scorer alone.
    With the shared ``triton`` client, when to try the model again is its circuit breaker's call (an open
    circuit fails in microseconds), so the fallback keeps no timer of its own."""
    from server.hallucination import FallbackScoreFn, lexical_score_fn, triton_score_fn

    mode = settings.guardrails.hallucination_scoring
    if mode == "off":
        return None
    use_triton = mode == "triton" or (mode == "auto" and not fake_backend and _repository_has(settings, "hallucination_scorer"))
    if not use_triton:
        return lexical_score_fn()
    if triton is None:
        return FallbackScoreFn(triton_score_fn(settings.triton.url), lexical_score_fn())
    return FallbackScoreFn(triton_score_fn(triton), lexical_score_fn(), retry_after_s=0.0)


async def _serve(settings: Settings, *, fake_backend: bool = False) -> None:
    # Built inside the running loop: grpc.aio clients bind to the loop that exists when they are created.
    components = build_components(settings, fake_backend=fake_backend)
    rerank_ms = None if fake_backend else await warm_up_backend(components.backend, settings.retrieval.rerank_top_n)
    warmup: asyncio.Task | None = None
    if settings.llm.local_warmup:
        # Before the port opens, bounded: on a 2-core box a background prefill steals the CPU the first
        # requests' 50 ms classify/embed budgets need (measured: the demo chat lost its classifier to it).
        warmup = asyncio.create_task(_warm_up_tiers(components.tiers.values()), name="llm-warmup")
        done, _ = await asyncio.wait({warmup}, timeout=LLM_WARMUP_WAIT_S)
        if not done:
            log.info("llm warm-up still running after %.0fs; serving anyway", LLM_WARMUP_WAIT_S)
    running = await start_server(settings, components)
    if rerank_ms is not None:  # a reranker too slow for its budget is skipped from the first request on
        running.pipeline.rerank_estimate.observe(rerank_ms)
    if warmup is not None and not warmup.done():
        running._warmup = warmup  # cancelled on drain
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(running.drain()))
    await running.wait()


async def warm_up_backend(backend: ModelBackend, rerank_pairs: int = 10, timeout_s: float = 10.0) -> float | None:
    """One call per request-path model before the port opens; returns the rerank call's milliseconds for
    ``rerank_pairs`` passage-sized pairs (None when the warm-up failed).

    Without it the first requests pay the first executions against their 50 ms stage budgets (measured with
    the real Triton on CPU: the first chat degraded to classifier_unavailable + retrieval_unavailable), and
    the first chats try a reranker that cannot fit its budget on CPU (10 pairs ~300-650 ms against 100 ms):
    Triton keeps executing a cut call, which starves the next requests' classify calls. Seeding the rerank
    estimate with the measured time skips it up front instead. Best effort: a Triton that is not up yet is
    the readiness watcher's business."""
    passage = " ".join(["volume"] * 160)  # fills the reranker's token window, like real chunks
    try:
        async with asyncio.timeout(timeout_s):
            await backend.classify(["hello"], timeout_s=timeout_s)
            vectors = await backend.embed(["hello"], timeout_s=timeout_s)
            await backend.adapt(vectors, timeout_s=timeout_s)
            await backend.rerank("hello", [passage], timeout_s=timeout_s)
            start = time.perf_counter()
            await backend.rerank("hello", [passage] * max(1, rerank_pairs), timeout_s=timeout_s)
            return (time.perf_counter() - start) * 1000
    except Exception as err:  # noqa: BLE001 -- start-up must not depend on Triton being up
        log.info("model backend warm-up skipped: %r", err)
        return None


LLM_WARMUP_WAIT_S = 30.0


async def _warm_up_tiers(tiers: Any) -> None:
    """Best effort: cache the shared prompt prefix of each local tier. Start-up waits for it at most
    ``LLM_WARMUP_WAIT_S``; a missing or slow ``llm_small`` never blocks serving."""
    seen: set[int] = set()
    for tier in tiers:
        if id(tier) in seen or not hasattr(tier, "warm_up"):
            continue
        seen.add(id(tier))
        try:
            await tier.warm_up()
            log.info("llm tier %s warmed up", getattr(tier, "model", tier))
        except Exception as err:  # noqa: BLE001 -- the first real request just pays the prefill
            log.info("llm tier warm-up skipped: %r", err)


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def serve_forever(settings: Settings, *, launch_triton: bool = False, fake_backend: bool = False) -> None:
    """Run until SIGTERM/SIGINT. ``launch_triton`` starts tritonserver on the built model repository
    (``paths.build_dir``/triton/cpu) first, points the backend at it, and stops it on exit."""
    logging.basicConfig(
        level=settings.telemetry.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    setup_tracing(settings.telemetry)
    # SIGTERM while tritonserver starts (before the loop's handlers exist) must still stop it: as SystemExit
    # the ExitStack below runs TritonServer.stop; Python's default SIGTERM action would orphan the server.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with contextlib.ExitStack() as stack:
        if launch_triton and not fake_backend:
            from server.triton_runtime import TritonServer

            triton = stack.enter_context(TritonServer(settings.paths.triton_repository))
            settings = settings.replace(triton={"url": triton.grpc_url})
        asyncio.run(_serve(settings, fake_backend=fake_backend))
