"""The composition root: build the real components (Triton backend, catalog, index, guardrails, LLM tiers,
hallucination scorer), the pipeline and the servicers, and run them (``serve_forever``).

The process lifecycle (listeners, health, drain, signals) is :mod:`server.lifecycle`; the supervision of
an embedded tritonserver is :mod:`server.supervisor`. Their names are re-exported here for the modules and
tests that import them from ``server.app``.

Start-up order of ``mangaassist serve``: signal handlers -> bind the gRPC port (a taken port fails now,
and Triton's free-port picks cannot take it) -> tritonserver (supervised) -> components -> warm-up ->
serve.
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

from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from mangaassist.v1 import mangaassist_pb2_grpc

from contracts.models import EMBED_DIM
from server.admission import Admission
from server.backends.base import ModelBackend
from server.guardrails.base import Guardrails, PassThroughGuardrails
from server.lifecycle import (  # noqa: F401 -- re-exported: server.app is where callers import them from
    LIVENESS,
    NOT_SERVING,
    READINESS,
    READY_SERVICES,
    SERVICE_NAME,
    SERVING,
    Listener,
    RunningServer,
    _Health,
    bind_listener,
    start_health_listener,
)
from server.llm.base import LLMTier
from server.llm.router import TierRouter
from server.llm.templates import TemplateTier
from server.metrics import Metrics
from server.pipeline import Pipeline, RuleMatcher
from server.retrieval.base import Product, ScoredChunk, VectorIndex
from server.rollout.wiring import rollout_parts, schedule_job
from server.servicer import MangaAssistServicer
from server.sessions import build_session_store
from server.settings import Settings
from server.stages.retrieve import Catalog
from server.telemetry import setup_tracing
from server.traffic import build_recorder
from server.traffic.monitors import start_monitors

log = logging.getLogger(__name__)


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
    #: conversation memory (server/sessions); None -> the store ``settings.sessions`` names
    sessions: Any | None = None
    #: the traffic log's store (server/traffic); None -> the store ``settings.traffic`` names
    traffic_store: Any | None = None
    closers: list[Callable[[], Any]] = field(default_factory=list)  # sync close() callables, run at exit


def build_pipeline(
    settings: Settings, components: Components, metrics: Metrics, scoring: Any | None = None, traffic: Any | None = None
) -> Pipeline:
    template = TemplateTier()
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
        sessions=components.sessions if components.sessions is not None else build_session_store(settings),
        **rollout_parts(settings, components.backend, metrics),  # server/rollout: versions on live traffic, feedback
        traffic=traffic,
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


async def start_server(
    settings: Settings,
    components: Components,
    *,
    serve_metrics: bool = True,
    listener: Listener | None = None,
    supervisor: Any | None = None,
) -> RunningServer:
    """Build and start the server; returns once it accepts connections (port 0 -> a free port).

    ``listener``: the already bound gRPC server (:func:`~server.lifecycle.bind_listener`), else it is bound
    here. ``supervisor``: the embedded Triton's :class:`~server.supervisor.TritonSupervisor`, whose events
    re-check readiness at once and which the drain stops last."""
    listener = listener or bind_listener(settings)
    metrics, server, cfg = listener.metrics, listener.server, settings.server
    scoring = build_scoring(settings, components, metrics)
    traffic = build_recorder(settings, metrics, components.backend, store=components.traffic_store)
    if scoring is not None:
        scoring.on_scored = traffic.hallucination_later  # the reversal triggers' hallucination rate per intent
    pipeline = build_pipeline(settings, components, metrics, scoring, traffic)
    mangaassist_pb2_grpc.add_MangaAssistServicer_to_server(MangaAssistServicer(pipeline), server)
    health = _Health()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )

    running = RunningServer(server, listener.port, pipeline, health, metrics, settings, components, scoring=scoring,
                            supervisor=supervisor)
    if supervisor is not None:
        supervisor.on_change = running.refresh_health
    if scoring is not None:
        scoring.start()
    if pipeline.rollout is not None:
        await pipeline.rollout.start()
        components.closers.append(pipeline.rollout.stop)
    traffic.start()
    running.jobs.append(traffic)
    running.jobs.append(_Closing(pipeline.feedback_store.aclose))  # the shared store's Redis client, at drain
    if pipeline.rollout is not None and pipeline.rollout.decisions is not None:
        running.jobs.append(_Closing(pipeline.rollout.decisions.aclose))
    if pipeline.rollout is not None and pipeline.rollout.counters is not None:
        running.jobs.append(_Closing(pipeline.rollout.counters.aclose))
    running.jobs.extend(start_monitors(settings, traffic, components, metrics, supervisor))
    schedule = schedule_job(settings, pipeline.rollout)  # a rollout plan moved on by one replica (server/rollout/schedule.py)
    if schedule is not None:
        running.jobs.append(schedule)
    await health.set(LIVENESS, SERVING)
    await running.refresh_health()
    if serve_metrics and cfg.metrics_port >= 0:
        running._metrics_httpd, running.metrics_port = metrics.serve_http(cfg.metrics_port)
    if cfg.health_port >= 0:
        running._health_server, running.health_port = await start_health_listener(health, f"{cfg.host}:{cfg.health_port}")
    await server.start()
    running._watcher = asyncio.create_task(running._watch(), name="readiness-watcher")
    log.info("MangaAssist serving on %s (metrics port %s, health port %s)", listener.address, running.metrics_port,
             running.health_port)
    return running


@dataclass
class _Closing:
    """A drain job (``await job.stop()``) that only closes something."""

    close: Callable[[], Any]

    async def stop(self) -> None:
        await self.close()


# ------------------------------------------------------------------------------------------ real wiring
class EmptyCatalog:
    """Used with ``--fake-backend`` when no catalog has been built: every lookup misses."""

    def get_product(self, asin: str) -> Product | None:
        return None

    def find_products(self, text: str, limit: int = 3) -> list[Product]:
        return []

    def get_order(self, order_id: str, customer_id: str) -> dict[str, Any] | None:
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
        from server.retrieval.index_loader import load_index

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
        from server.guardrails.suite import GuardrailSuite

        guardrails = GuardrailSuite(catalog, settings.guardrails)

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

        local = LocalTier("small", settings.triton.url, llm.local_model, catalog=catalog, triton=triton,
                          max_new_tokens=llm.local_max_new_tokens)
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


async def _serve(settings: Settings, *, launch_triton: bool = False, fake_backend: bool = False) -> None:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    running: RunningServer | None = None

    def on_signal() -> None:
        if running is None:  # still starting: unwind (the exit stack stops Triton on the way out)
            main.cancel()
        else:
            asyncio.ensure_future(running.drain())

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    # The port first: a taken port fails in milliseconds, not after Triton's start-up, and Triton's free-port
    # picks (the kernel's ephemeral range, which holds 50051) cannot take it meanwhile.
    listener = bind_listener(settings)
    async with contextlib.AsyncExitStack() as stack:
        supervisor = None
        if launch_triton and not fake_backend:
            supervisor = await _launch_triton(settings, listener.port)
            stack.push_async_callback(supervisor.stop)  # start-up failed or was cancelled; drain stops it too
            settings = settings.replace(triton={"url": supervisor.triton.grpc_url})
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
        running = await start_server(settings, components, listener=listener, supervisor=supervisor)
        if rerank_ms is not None:  # a reranker too slow for its budget is skipped from the first request on
            running.pipeline.rerank_estimate.observe(rerank_ms)
        if supervisor is not None:
            supervisor.warm_up = lambda: _rewarm(running)
        if warmup is not None and not warmup.done():
            running._warmup = warmup  # cancelled on drain
        await running.wait()


async def _launch_triton(settings: Settings, service_port: int) -> Any:
    """tritonserver on the built repository, supervised (restarted when it dies), on ports that avoid the
    service's own."""
    from server.supervisor import TritonSupervisor
    from server.triton_runtime import TritonServer

    cfg = settings.server
    avoid = {p for p in (service_port, cfg.port, cfg.metrics_port, cfg.health_port) if p > 0}
    triton = TritonServer(settings.paths.triton_repository, startup_timeout_s=cfg.triton_startup_timeout_s,
                          avoid_ports=avoid, model_control="explicit")  # `mangaassist model train --triton` loads into it
    supervisor = TritonSupervisor(triton, cfg)
    await supervisor.start()
    return supervisor


async def _rewarm(running: RunningServer) -> None:
    """After a Triton restart, before readiness returns: the request-path models' first executions, so the
    first chats do not pay them against their stage budgets (the local LLM's prefill is left to its first
    request: the router falls back to templates meanwhile)."""
    backend = running.components.backend
    deadline = asyncio.get_running_loop().time() + REWARM_READY_WAIT_S
    # the service's channel is still in its reconnect back-off right after the restart: wait it out first
    while not await backend.is_ready() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
    # the breakers opened on the dead process; this one has just answered ready, so start them closed (else
    # the warm-up and the first chats wait out a cooldown per model: measured 3.6 s of degraded chats)
    for breaker in getattr(backend, "breakers", {}).values():
        breaker.record_success()
    rerank_ms = await warm_up_backend(backend, running.settings.retrieval.rerank_top_n)
    if rerank_ms is not None:
        running.pipeline.rerank_estimate.observe(rerank_ms)


REWARM_READY_WAIT_S = 10.0


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
    (``paths.build_dir``/triton/cpu) under a supervisor that restarts it when it dies, points the backend at
    it, and stops it on exit."""
    logging.basicConfig(
        level=settings.telemetry.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    setup_tracing(settings.telemetry)
    # Until the loop installs its handlers, SIGTERM must still unwind (Python's default would just die).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        asyncio.run(_serve(settings, launch_triton=launch_triton, fake_backend=fake_backend))
    except asyncio.CancelledError:  # a signal during start-up: Triton has been stopped on the way out
        raise SystemExit(128 + signal.SIGTERM) from None
