"""The service's one settings object: frozen dataclasses, loaded once at start-up.

Sources, later wins:

1. the defaults below (a laptop/CI configuration: Triton on localhost:8001, FAISS, no LLM tiers);
2. a YAML file -- ``load_settings(path)`` or the path in ``MANGAASSIST_CONFIG`` -- whose top-level keys are
   the section names (``server``, ``triton``, ``budgets``, ...) and whose nested keys are field names;
3. environment overrides ``MANGAASSIST_<SECTION>_<FIELD>`` (``MANGAASSIST_TRITON_URL``,
   ``MANGAASSIST_BUDGETS_TOTAL_MS``, ``MANGAASSIST_ROUTING_TIERS='{"chitchat": "small"}'``) plus the short
   aliases in :data:`ENV_ALIASES` (``MANGAASSIST_GRPC_PORT``, ``MANGAASSIST_METRICS_PORT``).

This module is the only place in ``server/`` that reads the environment. Unknown YAML keys are errors
(a typo must not silently fall back to a default); unknown ``MANGAASSIST_*`` variables are logged.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import logging
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from contracts import models as contract
from server.intents import INTENT_LABELS

log = logging.getLogger(__name__)

ENV_PREFIX = "MANGAASSIST_"
CONFIG_ENV = "MANGAASSIST_CONFIG"
#: Variables with the prefix that are not server settings (the client CLI reads MANGAASSIST_TARGET).
ENV_NOT_SETTINGS = frozenset({"MANGAASSIST_CONFIG", "MANGAASSIST_TARGET", "MANGAASSIST_TOKEN",
                              # the test suite's switches (tests/support/requirements.py, tests/integration/test_fuzz.py)
                              "MANGAASSIST_REQUIRE_MILVUS", "MANGAASSIST_REQUIRE_ALL", "MANGAASSIST_FUZZ_EXAMPLES"})
#: Short names for the overrides an operator reaches for most.
ENV_ALIASES: Mapping[str, tuple[str, str]] = types.MappingProxyType(
    {
        "MANGAASSIST_GRPC_PORT": ("server", "port"),
        "MANGAASSIST_PORT": ("server", "port"),
        "MANGAASSIST_METRICS_PORT": ("server", "metrics_port"),
        "MANGAASSIST_HEALTH_PORT": ("server", "health_port"),
        "MANGAASSIST_AUTH_TOKENS": ("server", "auth_tokens"),
        "MANGAASSIST_BUILD_DIR": ("paths", "build_dir"),
    }
)

TIERS = ("template", "small", "large")
#: what a caller may be allowed (server.auth_scopes); the interceptor maps each RPC to one.
AUTH_SCOPES = ("chat", "classify", "retrieve", "admin")
#: (section, field) pairs holding secrets: ``to_dict`` (``--print-config``) shows them redacted.
SECRET_FIELDS = frozenset({("server", "auth_tokens")})
REDACTED = "<redacted>"


def _frozen_map(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return types.MappingProxyType(dict(value))


@dataclass(frozen=True)
class ServerSettings:
    """The gRPC listener, its limits and its lifecycle."""

    host: str = "[::]"
    port: int = 50051  # 0 = pick a free port (tests)
    metrics_port: int = 9464  # Prometheus /metrics over HTTP; -1 disables, 0 = pick a free port
    #: a plaintext listener serving ONLY grpc.health.v1 (kubelet's gRPC probes cannot speak TLS); -1 = none,
    #: 0 = pick a free port. The Helm chart sets it (MANGAASSIST_HEALTH_PORT) when TLS is on.
    health_port: int = -1
    max_concurrency: int = 64  # in-flight model RPCs; the next one fails fast with RESOURCE_EXHAUSTED
    max_message_bytes: int = 64 * 1024  # grpc max_receive_message_length; larger -> RESOURCE_EXHAUSTED
    max_text_chars: int = 2000  # per chat message / classify text / retrieve query
    max_classify_texts: int = 64  # texts per Classify call (the classifier's max_batch_size)
    default_top_k: int = 5
    max_top_k: int = 50
    drain_grace_s: float = 10.0  # SIGTERM: in-flight RPCs get this long to finish
    #: SIGTERM: new calls are refused (UNAVAILABLE "draining", retryable) this long before the gRPC server stops:
    #: a call already on the wire but not yet picked up by the server would be CANCELLED by the stop itself
    drain_settle_s: float = 0.25
    health_poll_s: float = 2.0  # how often readiness re-checks the model backend
    # -- the embedded tritonserver (``mangaassist serve`` without --triton-url), supervised (server/supervisor.py):
    #: when it dies, readiness goes NOT_SERVING, its stubs are killed and it is started again on the same ports
    #: after a back-off that doubles from ``triton_restart_backoff_s`` up to ``triton_restart_backoff_max_s``.
    #: After ``triton_restart_attempts`` restarts without ``triton_stable_s`` of uptime in between, the
    #: supervisor gives up and liveness goes NOT_SERVING: a new pod is the way back.
    triton_restart_attempts: int = 5
    triton_restart_backoff_s: float = 1.0
    triton_restart_backoff_max_s: float = 30.0
    triton_stable_s: float = 60.0
    triton_startup_timeout_s: float = 300.0  # one start (first or restart) may take this long to get ready
    auth_tokens: tuple[str, ...] = field(default=(), repr=False)  # bearer tokens; empty = no auth (secret)
    auth_exempt_prefixes: tuple[str, ...] = ("/grpc.health.v1.Health/",)  # kubelet probes carry no token
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_client_ca_file: str | None = None  # set -> mutual TLS (client certificates required)
    service_version: str = "0.1.0"
    # -- hardening of the gRPC surface (server/lifecycle.py ``server_options``, server/interceptors.py) --
    #: the server pings a connection idle this long (dead peers are found); no ack within the timeout -> closed
    keepalive_time_ms: int = 60_000
    keepalive_timeout_ms: int = 20_000
    #: keepalive enforcement: a client ping sooner than this after the last one (no data in between) is a
    #: strike; past ``keepalive_max_ping_strikes`` strikes (0 = no limit) the server closes the connection
    #: (GOAWAY too_many_pings). Pings on a connection with no call open are strikes unless permitted.
    keepalive_min_ping_interval_ms: int = 10_000
    keepalive_max_ping_strikes: int = 2
    keepalive_permit_without_calls: bool = False
    #: a connection is sent GOAWAY at this age (+-10% jitter, gRPC's) and closed after the grace, so a
    #: long-lived client reconnects and re-resolves: new pods get its calls. 0 = never.
    max_connection_age_ms: int = 300_000
    max_connection_age_grace_ms: int = 30_000  # > the longest call (answer_ms), so none is cut
    #: a cap on calls in flight per connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); 0 = gRPC's default (no
    #: cap). Off by default: with 100, a soak's long-lived client got REFUSED_STREAM on every call after 3-7 min
    #: (the server still counted streams the client had given up on), an outage the 2,000-call tests never saw.
    max_concurrent_streams: int = 0
    #: per-caller token bucket (caller = the bearer token's caller, else the peer's address):
    #: ``rate_limit_per_s`` calls/s, bursts up to ``rate_limit_burst``; over it -> RESOURCE_EXHAUSTED, reason
    #: ``rate_limited``, trailing metadata ``retry-after`` (seconds). 0 = off (one caller behind a gateway
    #: would be every customer: set it where callers are services with tokens).
    rate_limit_per_s: float = 0.0
    rate_limit_burst: int = 20
    rate_limit_max_callers: int = 10_000  # buckets kept; the least recently seen caller's is dropped first
    #: authorisation: caller -> scopes it holds (``chat``: Chat/ChatStream, ``classify``, ``retrieve``,
    #: ``admin``: Describe and reflection); a caller not listed holds all. A token ``<caller>.<secret>``
    #: names its caller; a token without a dot is caller ``token<N>`` (its 1-based place in auth_tokens).
    #: A call outside the caller's scopes -> PERMISSION_DENIED.
    auth_scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: which end customers a caller may act for (``ChatRequest.customer_id``): caller -> customer ids, ``"*"`` =
    #: any; a caller not listed may act for any customer. A chat for anyone else -> PERMISSION_DENIED.
    auth_customers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_customer_id_chars: int = 128
    access_log: bool = True  # one line per call on logger mangaassist.access (never the message text)

    def __post_init__(self) -> None:
        object.__setattr__(self, "auth_scopes", _frozen_map({k: tuple(v) for k, v in self.auth_scopes.items()}))
        object.__setattr__(self, "auth_customers", _frozen_map({k: tuple(v) for k, v in self.auth_customers.items()}))


@dataclass(frozen=True)
class TritonSettings:
    """Where the models live and how calls to them behave. The model names default to the names the model
    contract (contracts/models.py) owns; a test points them at other models."""

    url: str = "localhost:8001"
    classifier_model: str = contract.INTENT_CLASSIFIER.name
    embedder_model: str = contract.QUERY_EMBEDDER.name
    adapter_model: str = contract.EMBEDDING_ADAPTER.name
    reranker_model: str = contract.RERANKER.name
    call_margin_ms: float = 5.0  # kept back from the remaining budget on every call (serialisation, network)
    use_adapter: bool = True
    #: also send the remaining budget as Triton's per-request queue ``timeout``; only honoured by models
    #: whose queue_policy sets ``allow_timeout_override: true``.
    send_queue_timeout: bool = False
    max_batch_size: int = 64  # rows per infer call; larger batches are split and sent concurrently
    breaker_failures: int = 5  # consecutive connection failures/timeouts that open a model's circuit
    breaker_cooldown_s: float = 2.0  # open -> half-open (one trial call) after this long
    ready_timeout_s: float = 1.0
    # -- the one Triton client (server/backends/client.py): versions, channel, liveness --
    #: the model version every call names explicitly; ``model_versions`` overrides it per model (rollouts)
    model_version: str = contract.DEFAULT_MODEL_VERSION
    model_versions: Mapping[str, str] = field(default_factory=dict)
    #: client-side load balancing over every address ``url`` resolves to ("dns:///triton-headless:8001",
    #: "ipv4:10.0.0.1:8001,10.0.0.2:8001"); "" = gRPC's default (pick_first: one pod per channel)
    load_balancing: str = "round_robin"
    keepalive_time_ms: int = 10_000  # HTTP/2 pings while calls are in flight (never on an idle connection)
    keepalive_timeout_ms: int = 5_000  # no ping ack within this -> the connection is dead
    max_message_bytes: int = 64 * 1024 * 1024  # gRPC send/receive limit of the Triton channel
    #: after a call times out, Triton's ServerLive gets this long to answer: answered = slow (the breaker is
    #: not touched), not answered = dead (counts as a breaker failure)
    liveness_probe_s: float = 0.25

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_versions", _frozen_map(self.model_versions))


@dataclass(frozen=True)
class BudgetSettings:
    """Milliseconds. ``total_ms`` covers the non-LLM path; the deadline is min(caller's, total)."""

    total_ms: float = 300.0
    classify_ms: float = 50.0
    embed_ms: float = 50.0
    adapter_ms: float = 20.0
    retrieve_ms: float = 30.0
    rerank_ms: float = 100.0
    #: rerank is skipped (degraded "rerank_skipped") when less than this is left, or when the call is expected to
    #: take longer than the chat can give it (server/stages/rerank.py: the decision is per chat)
    rerank_min_remaining_ms: float = 40.0
    answer_ms: float = 8000.0  # the answer stage (LLM tier), bounded by the caller's deadline
    #: Classify / Retrieve without a caller deadline: their stage budget grows by these per row beyond a
    #: chat's (1 text; retrieval.rerank_top_n pairs). Under a caller deadline that deadline bounds them.
    classify_per_text_ms: float = 10.0
    rerank_per_pair_ms: float = 10.0
    #: a chat's expected rerank call = its recent latency (running ~p95) x this, plus rerank_queue_weight x that
    #: latency per rerank call already in flight from this process; the chat is skipped when that exceeds
    #: min(rerank_ms, what it has left)
    rerank_expected_margin: float = 1.1
    rerank_queue_weight: float = 0.5  # an in-flight call is about half done when the next one arrives
    #: no rerank call ended for this long (all skipped): one chat probes the reranker to refresh its latency
    rerank_probe_after_s: float = 1.0


@dataclass(frozen=True)
class RetrievalSettings:
    backend: str = "faiss"  # "faiss" | "milvus"
    top_k: int = 5  # chunks handed to the answer stage
    rerank_top_n: int = 10  # vector candidates the reranker sees (its build evaluation uses 10 too)
    #: final rerank score = cross-encoder logit + this x retrieval cosine; the build picks it on held-out
    #: tuning queries (reports/summary.json reranker.rerank_eval.fusion_weight). 0 = cross-encoder only.
    rerank_fusion_weight: float = 0.5  # the build's pick (held-out R@3: 90.8% fused, 90.1% alone, 86.8% none)
    index_dir: str = ".build/index"
    catalog_db: str = ".build/index/catalog.sqlite"
    milvus_uri: str = ".build/index/milvus.db"
    milvus_collection: str = "mangaassist_chunks"
    max_cards: int = 3
    #: intents whose answers need retrieved context; the others skip embed/retrieve/rerank
    retrieval_intents: tuple[str, ...] = (
        "product_question",
        "recommendation",
        "return_refund",
        "policy_faq",
        "price_deal",
    )


@dataclass(frozen=True)
class RoutingSettings:
    """intent -> tier, temperature and max_tokens. The router falls back large -> small -> template."""

    #: Every intent answers from the grounded template tier by default: on the golden set the local LLM tier
    #: lost to it on every intent (docs/answers-and-evaluation.md: factual correctness, completeness, answer p99), and a tier
    #: that loses on the eval is not used by default. Route an intent to "small"/"large" in config once an
    #: eval run shows that tier beating the template on it (``mangaassist eval --gate``).
    tiers: Mapping[str, str] = field(default_factory=lambda: {intent: "template" for intent in INTENT_LABELS})
    temperatures: Mapping[str, float] = field(
        default_factory=lambda: {
            "product_question": 0.1,
            "recommendation": 0.5,
            "order_status": 0.1,
            "return_refund": 0.2,
            "policy_faq": 0.2,
            "price_deal": 0.1,
            "chitchat": 0.7,
            "escalation": 0.1,
        }
    )
    max_tokens: Mapping[str, int] = field(
        default_factory=lambda: {
            "product_question": 256,
            "recommendation": 384,
            "order_status": 128,
            "return_refund": 256,
            "policy_faq": 256,
            "price_deal": 192,
            "chitchat": 96,
            "escalation": 96,
        }
    )
    #: below this classifier confidence the intent is treated as unknown (template answer, no LLM)
    min_confidence: float = 0.0

    def __post_init__(self) -> None:
        for name in ("tiers", "temperatures", "max_tokens"):
            value = getattr(self, name)
            missing = set(INTENT_LABELS) - set(value)
            extra = set(value) - set(INTENT_LABELS)
            if missing or extra:
                raise ValueError(f"routing.{name}: missing {sorted(missing)}, unknown {sorted(extra)}")
            object.__setattr__(self, name, _frozen_map(value))
        bad = {k: v for k, v in self.tiers.items() if v not in TIERS}
        if bad:
            raise ValueError(f"routing.tiers: unknown tier(s) {bad}; use one of {TIERS}")


@dataclass(frozen=True)
class LLMSettings:
    enabled: bool = False  # Bedrock tiers; off -> only the template (and any injected local) tier
    bedrock_region: str = "us-east-1"
    small_model_id: str = "anthropic.claude-3-haiku-20240307-v1:0"
    large_model_id: str = "anthropic.claude-3-5-sonnet-20240620-v1:0"
    small_input_usd_per_1k: float = 0.00025
    small_output_usd_per_1k: float = 0.00125
    large_input_usd_per_1k: float = 0.003
    large_output_usd_per_1k: float = 0.015
    max_attempts: int = 2  # botocore total_max_attempts (429/5xx retried once; 408 falls back at once)
    #: the local SmolLM2 tier (Triton model ``local_model``): "auto" = when the built repository
    #: (``paths.triton_repository``) has it; "on" = always (Triton elsewhere, e.g. the cluster); "off".
    #: It serves "small", and "large" too when Bedrock is off (``enabled``); answers report ``model``.
    local_tier: str = "auto"
    local_model: str = contract.LLM_SMALL.name
    local_warmup: bool = True  # one 1-token call at start-up caches the shared prompt prefix's KV
    #: a cap on the routes' max_tokens for the local model: every answer it finished on the golden prompts fit in
    #: 57 tokens, and 64 cut its p99 from 23.3 s to 7.1 s (benchmarks/results/llm), inside budgets.answer_ms (8 s)
    local_max_new_tokens: int = 64


@dataclass(frozen=True)
class GuardrailSettings:
    """The guardrail suite (server/guardrails/suite.py) and the async hallucination scoring (server/hallucination)."""

    enabled: bool = True  # False -> pass-through guardrails (benchmarks of the bare path only)
    injection_threshold: float = 0.5  # a message whose prompt-injection score reaches this is blocked
    #: the learned jailbreak scorer beside the injection patterns, built by scripts/setup.sh (never committed);
    #: "" = the patterns only. A configured file that is missing fails the start.
    injection_model: str = ".build/guardrails/injection_model.json"
    #: competitor name -> the regex that finds it; None = the suite's list (server/guardrails/competitor.py, data
    #: rather than a knob); a table given here replaces that list whole
    competitors: Mapping[str, str] | None = None
    redact_output_pii: bool = True
    leak_ngram: int = 8  # word n-gram length of the system-prompt leak check (a shared n-gram = a leak)
    hallucination_alert: float = 0.5
    #: score at which the session is blocked for an hour; None (the default) = alert-only. The scorer misses the
    #: blocking target (issue 22.6: held-out precision 63.9% / recall 53.6% at 0.7, 32% of grounded template answers
    #: flagged -- benchmarks/results/hallucination_alerting), so it only alerts until a scorer meets it
    hallucination_block: float | None = None
    #: async scoring after each Chat answer (server/hallucination): "auto" = Triton's
    #: ``hallucination_scorer`` when the built repository has it, else the lexical scorer; "triton"
    #: (falls back to lexical while the model is missing); "lexical"; "off"
    hallucination_scoring: str = "auto"
    hallucination_queue_size: int = 256  # answers waiting to be scored; a full queue drops (counted)
    hallucination_review_db: str = ":memory:"  # SQLite review queue (score >= alert); a path persists it
    #: ``mangaassist_hallucination_daily_avg_alert`` fires while today's (UTC) mean score is above this, once
    #: ``hallucination_daily_avg_min_samples`` answers were scored today
    hallucination_daily_avg_alert: float = 0.03
    hallucination_daily_avg_min_samples: int = 1
    hallucination_block_ttl_s: float = 3600.0  # how long a session blocked by ``hallucination_block`` stays blocked
    hallucination_max_blocked_sessions: int = 100_000  # in-process blocks kept; the oldest is forgotten first
    hallucination_job_timeout_s: float = 10.0  # one answer's scoring, backend call included
    hallucination_drain_timeout_s: float = 5.0  # SIGTERM: queued answers get this long to be scored
    hallucination_review_sources: int = 4  # sources stored with a review row


@dataclass(frozen=True)
class TelemetrySettings:
    otel_exporter: str = "none"  # "none" | "console" | "otlp"
    otlp_endpoint: str | None = None
    service_name: str = "mangaassist"
    log_level: str = "INFO"


@dataclass(frozen=True)
class PathSettings:
    build_dir: str = ".build"

    @property
    def triton_repository(self) -> Path:
        return Path(self.build_dir) / "triton" / "cpu"


@dataclass(frozen=True)
class StateSettings:
    """Where the state every replica must agree on lives (server/state.py): the one switch, not one per store.

    ``memory``: in this process (the embedded default: ``scripts/run.sh``, the tests, ONE replica) -- sessions and
    both rate limits, hallucination blocks, the review queue (SQLite ``guardrails.hallucination_review_db``), feedback
    attribution, the canary guards' counters and the rollout decision; the traffic log in SQLite
    (``traffic.sqlite_path``). ``redis``: any replica count -- all of those in the Redis at ``redis_url`` and the
    traffic log in the PostgreSQL at ``postgres_dsn``; a decision taken on one replica (a rollback) reaches every
    replica and outlives restarts. The Helm chart refuses ``memory`` with more than one replica or the HPA on."""

    backend: str = "memory"  # "memory" (one process) | "redis" (Redis + PostgreSQL: the cluster)
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: libpq connection string of the traffic log under ``backend: redis``, no password in it (libpq reads
    #: PGPASSWORD / PGPASSFILE from the environment: the chart sets PGPASSWORD from a Secret)
    postgres_dsn: str = "host=127.0.0.1 port=5432 dbname=mangaassist user=mangaassist"
    #: prefix of the keys of the stores below sessions (feedback attribution, rollout decision, guard counters)
    key_prefix: str = "mangaassist:"
    #: a shared-state call slower than this is an outage: the caller degrades (feedback recorded=false, the last
    #: known rollout decision kept), never waits longer; the session store has its own (``sessions.timeout_ms``)
    timeout_ms: float = 50.0
    #: feedback attribution (request -> versions/tier) is kept this long in Redis (the in-process store keeps the
    #: last ``rollout.feedback_window`` answers instead)
    feedback_ttl_s: float = 7 * 86400.0

    @property
    def shared(self) -> bool:
        return self.backend == "redis"


@dataclass(frozen=True)
class SessionSettings:
    """Conversation memory (server/sessions): the recent turns of each session, for follow-ups. Where it lives is
    ``state.backend``'s call (this process, or Redis for every replica)."""

    enabled: bool = True  # False: every turn stands alone (no memory, no session/customer rate limits)
    key_prefix: str = "mangaassist:session:"
    ttl_s: float = 1800.0  # a session is forgotten this long after its last turn
    max_turns: int = 6  # turns kept per session (oldest dropped)
    max_turn_chars: int = 600  # message and answer are each cut to this many characters before storing
    max_sessions: int = 100_000  # in-process store only: least recently used sessions beyond this are dropped
    timeout_ms: float = 25.0  # a store call slower than this is an outage: the turn is answered without memory
    #: per-session token bucket, kept in the store (so every pod shares it): a session sending faster than
    #: ``rate_per_s`` (bursts up to ``rate_burst``) gets RESOURCE_EXHAUSTED, reason ``session_rate_limited``, and
    #: cannot take the pod's concurrency cap. 0 = off. A person types far slower than 2 messages a second.
    rate_per_s: float = 2.0
    rate_burst: int = 10
    #: per-customer token bucket (``ChatRequest.customer_id``), in the same store: one customer opening many
    #: sessions still gets RESOURCE_EXHAUSTED, reason ``customer_rate_limited``, past it. 0 = off.
    customer_rate_per_s: float = 5.0
    customer_rate_burst: int = 30


@dataclass(frozen=True)
class TrafficSettings:
    """The traffic log (server/traffic): every answered Chat/ChatStream turn, written after the response by a
    background writer. The message is stored as redacted by the PII guardrail, the session id as a hash."""

    #: where the log lives is ``state.backend``'s call: SQLite at ``sqlite_path`` (memory: one process) or the
    #: PostgreSQL at ``state.postgres_dsn`` (redis: every replica writes the one table)
    enabled: bool = True
    sqlite_path: str = "var/traffic.db"
    table: str = "traffic"
    queue_size: int = 1024  # turns waiting for the writer; a full queue drops the turn (counted), never waits
    batch_size: int = 200  # turns per write
    retention_days: float = 30.0  # rows older than this are deleted
    max_rows: int = 1_000_000  # and the oldest beyond this many
    prune_interval_s: float = 600.0


@dataclass(frozen=True)
class DriftSettings:
    """Drift monitoring over the traffic log (server/drift): the current window against the one before it."""

    enabled: bool = True  # the periodic job in the service (needs the traffic log); the CLI works regardless
    interval_s: float = 3600.0
    window_s: float = 7 * 86400.0  # week over week
    min_samples: int = 200  # a window with fewer turns raises no alarm (reported as insufficient)
    intent_share_points: float = 5.0  # any intent's share moving more than this many points
    min_confidence: float = 0.85  # the classifier's mean confidence (model-decided turns) below this
    #: embedding drift: KL of the query-embedding sketches' shares of the reference window's clusters (bias-corrected)
    #: above this, and the G-test on the same counts below ``kl_alpha`` (a real shift, not sampling noise)
    kl_threshold: float = 0.005
    kl_alpha: float = 0.01
    kl_bins: int = 10  # the report's per-dimension diagnostic: histogram bins (reference-window deciles)
    #: new pattern clusters: the share of current turns far from every reference cluster (beyond the
    #: reference's own 95th-percentile distance) above this -> "new data needed"
    outlier_share: float = 0.12
    #: ... or the share of current turns using words the reference window (nearly) never used above this
    new_term_share: float = 0.05
    #: k-means clusters of the reference window's sketches (the KL's bins and the outliers' centres)
    clusters: int = 6
    #: the intent-share and confidence alarms are held when classifier outages exceed this share of either window
    max_outage_share: float = 0.10
    #: the golden-set probe: the classifier's accuracy on these labelled messages, measured each run through the
    #: live backend ("" = off); "holding" = within ``golden_drop_points`` of the baseline (the first probe's)
    golden_path: str = ".build/golden/golden.jsonl"
    golden_probe_size: int = 200
    golden_drop_points: float = 2.0
    #: the weekly labelling queue (server/drift/label_queue.py): thumbs-down and low-confidence turns since the last
    #: export, as Label Studio tasks in this directory ("" = off; ``mangaassist drift label-export`` does it by hand)
    label_queue_dir: str = ""
    label_queue_interval_s: float = 7 * 86400.0
    label_queue_below: float = 0.7
    label_queue_max: int = 200


@dataclass(frozen=True)
class TriggerSettings:
    """The seven reversal triggers (server/drift/triggers.py): thresholds evaluated every ``interval_s`` against
    the traffic log's last ``window_s`` (the tier-quality trigger: against the window before it). A trigger with
    fewer than its minimum samples in the window stays quiet (reported as insufficient). Gauges
    ``mangaassist_reversal_trigger_{value,crossed}{trigger}``; the chart alerts on ``crossed``."""

    enabled: bool = True  # the periodic job in the service (needs the traffic log); the CLI works regardless
    interval_s: float = 300.0
    window_s: float = 3600.0
    min_samples: int = 200  # answered turns in the window before the rate triggers judge
    #: 1. tier quality: a tier's thumbs-up share of its rated turns falls more than this many points below the
    #: window before (``tier_min_feedback`` rated turns in each window)
    tier_quality_drop_points: float = 5.0
    tier_min_feedback: int = 30
    #: 2. misclassification-driven escalation: turns the Feedback RPC marked ``escalated`` whose intent was not
    #: ``escalation`` (the customer wanted what the classifier did not see), per answered turn
    misclassified_escalation_rate: float = 0.03
    #: 3. guardrail block rate: answers blocked (``blocked``, or a guardrail action ``<name>:blocked``) per answered turn
    guardrail_block_rate: float = 0.05
    #: 4. hallucination rate per intent: scored answers at or above ``guardrails.hallucination_alert``, per scored
    #: answer of that intent (``hallucination_min_scored`` of them before an intent judges)
    hallucination_rate: float = 0.03
    hallucination_min_scored: int = 30
    #: 5. latency: p99 of the non-LLM path (every stage but ``answer``; classify and embed overlap) above this
    #: many ms (0 = ``budgets.total_ms``)
    p99_ms: float = 0.0
    #: 6. cost per answered turn (LLM tokens at ``llm`` prices + Triton at ``triton_usd_per_turn``) above this
    cost_per_turn_usd: float = 0.002
    #: Triton's cost of a model-path turn until the service's cost job (costs.*) has measured one: then its figure
    triton_usd_per_turn: float = 7.1e-06  # measured (docs/lifecycle.md, "Cost": classify + embed + adapter path on Triton)
    #: 7. classifier confidence: mean confidence of model-decided turns below this
    min_confidence: float = 0.85


@dataclass(frozen=True)
class CostSettings:
    """Cost accounting (server/traffic/cost.py): LLM token prices are in ``llm``; Triton's share is the
    instance price spread over each model's measured busy time."""

    instance_usd_per_hour: float = 1.006  # the Triton instance's price (on-demand g5.xlarge, us-east-1)
    #: how many inference-seconds the instance offers per second (1 = one GPU; on CPU: the cores Triton uses)
    instance_capacity: float = 1.0
    #: Triton's Prometheus endpoint ("" = the embedded Triton's, when the service launched it)
    triton_metrics_url: str = ""
    interval_s: float = 60.0  # how often the service scrapes it and updates the cost gauges


@dataclass(frozen=True)
class RolloutSettings:
    """Classifier versions on live traffic (server/rollout): shadow, canary, guards, automatic rollback.

    ``file``: the rollout file (YAML/JSON, server/rollout/config.py), re-read every ``poll_s`` without a restart;
    "" = no rollout (the classifier is called through its ensemble at ``triton.model_version``). A version that
    answers customers (stable, canary) needs a passing gate record in the registry under ``lifecycle_dir``
    (model_repository/lifecycle); without a registry only ``default_version`` may answer."""

    file: str = ""
    poll_s: float = 1.0
    lifecycle_dir: str = ".lifecycle"  # the MLflow registry (mlflow.db) holding versions and gate records
    default_version: str = "1"
    shadow_timeout_ms: float = 1000.0  # one shadow call (after the response, off the critical path)
    shadow_max_in_flight: int = 8  # more shadow calls than this at once are dropped (counted)
    feedback_db: str = ""  # SQLite file the Feedback RPC's records are appended to ("" = memory only)
    feedback_window: int = 100_000  # answers remembered to attribute feedback (older ids: recorded=false)
    low_confidence: float = 0.5  # a classifier answer below this confidence counts as low-confidence
    # -- canary guards: the canary vs stable since the canary started; crossing one rolls the canary back --
    guard_min_requests: int = 50  # canary answers before the rate guards judge
    guard_min_feedback: int = 20  # canary thumbs (up + down) before the thumbs-down guard judges
    guard_max_error_rate: float = 0.02  # classifier failures/timeouts per answer, over stable's
    guard_max_p99_ratio: float = 2.0  # canary classify p99 / stable's (0 = off) ...
    guard_p99_floor_ms: float = 20.0  # ... and only when the canary's p99 is above this
    guard_max_low_confidence_delta: float = 0.05
    guard_max_escalation_delta: float = 0.01  # escalated feedback per answer (design: escalation <= +1%)
    guard_max_thumbs_down_delta: float = 0.02  # share of thumbs down (design: thumbs-up >= -2%)
    # -- a rollout file's plan (server/rollout/schedule.py): one job (the lease holder under Redis) moves it on --
    plan_interval_s: float = 10.0  # how often the schedule judges the current step
    plan_alpha: float = 0.025  # one-sided level of the escalation / thumbs-down bounds (progress and abort)

    def __post_init__(self) -> None:
        if self.poll_s <= 0 or self.shadow_max_in_flight < 0 or self.feedback_window < 1 or self.guard_min_requests < 1:
            raise ValueError("rollout.poll_s must be > 0, shadow_max_in_flight >= 0, feedback_window and "
                             "guard_min_requests >= 1")
        if self.plan_interval_s <= 0 or not 0 < self.plan_alpha < 0.5:
            raise ValueError("rollout.plan_interval_s must be > 0 and plan_alpha in (0, 0.5)")


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    triton: TritonSettings = field(default_factory=TritonSettings)
    budgets: BudgetSettings = field(default_factory=BudgetSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    guardrails: GuardrailSettings = field(default_factory=GuardrailSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    paths: PathSettings = field(default_factory=PathSettings)
    state: StateSettings = field(default_factory=StateSettings)
    sessions: SessionSettings = field(default_factory=SessionSettings)
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    traffic: TrafficSettings = field(default_factory=TrafficSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    costs: CostSettings = field(default_factory=CostSettings)
    triggers: TriggerSettings = field(default_factory=TriggerSettings)

    def __post_init__(self) -> None:
        _check(self)

    def replace(self, **sections: Mapping[str, Any]) -> "Settings":
        """A copy with some fields changed: ``settings.replace(server={"port": 0})`` (tests, CLI flags)."""
        return _build(_merge(to_dict(self, redact_secrets=False), sections))


def _check(s: Settings) -> None:
    problems = []
    if s.state.backend not in ("memory", "redis"):
        problems.append(f"state.backend must be memory|redis, not {s.state.backend!r}")
    if s.state.timeout_ms <= 0 or s.state.feedback_ttl_s <= 0:
        problems.append("state.timeout_ms and state.feedback_ttl_s must be > 0")
    if s.sessions.max_turns < 1 or s.sessions.ttl_s <= 0:
        problems.append("sessions.max_turns must be >= 1 and sessions.ttl_s > 0")
    if s.traffic.queue_size < 1 or s.traffic.batch_size < 1 or s.traffic.max_rows < 1 or s.traffic.retention_days <= 0:
        problems.append("traffic.queue_size, batch_size, max_rows must be >= 1 and retention_days > 0")
    if s.drift.window_s <= 0 or s.drift.interval_s <= 0 or s.costs.interval_s <= 0 or s.costs.instance_capacity <= 0:
        problems.append("drift.window_s, drift.interval_s, costs.interval_s and costs.instance_capacity must be > 0")
    if s.triggers.window_s <= 0 or s.triggers.interval_s <= 0 or s.triggers.min_samples < 1:
        problems.append("triggers.window_s and triggers.interval_s must be > 0, triggers.min_samples >= 1")
    if s.retrieval.backend not in ("faiss", "milvus"):
        problems.append(f"retrieval.backend must be faiss|milvus, not {s.retrieval.backend!r}")
    if s.telemetry.otel_exporter not in ("none", "console", "otlp"):
        problems.append(f"telemetry.otel_exporter must be none|console|otlp, not {s.telemetry.otel_exporter!r}")
    for f in dataclasses.fields(s.budgets):
        if getattr(s.budgets, f.name) <= 0:
            problems.append(f"budgets.{f.name} must be > 0")
    if s.server.max_concurrency < 1:
        problems.append("server.max_concurrency must be >= 1")
    if s.server.max_concurrent_streams < 0 or s.server.rate_limit_burst < 1 or s.server.rate_limit_per_s < 0:
        problems.append("server.max_concurrent_streams must be >= 0, rate_limit_burst >= 1, rate_limit_per_s >= 0")
    bad_scopes = {c: v for c, v in s.server.auth_scopes.items() if set(v) - set(AUTH_SCOPES)}
    if bad_scopes:
        problems.append(f"server.auth_scopes: unknown scope(s) in {bad_scopes}; known: {AUTH_SCOPES}")
    if s.server.triton_restart_attempts < 0:
        problems.append("server.triton_restart_attempts must be >= 0")
    if not 0 < s.server.triton_restart_backoff_s <= s.server.triton_restart_backoff_max_s:
        problems.append("server.triton_restart_backoff_s must be > 0 and <= triton_restart_backoff_max_s")
    if not 1 <= s.server.default_top_k <= s.server.max_top_k:
        problems.append("server.default_top_k must be in [1, max_top_k]")
    if s.llm.local_tier not in ("auto", "on", "off"):
        problems.append(f"llm.local_tier must be auto|on|off, not {s.llm.local_tier!r}")
    if s.guardrails.hallucination_scoring not in ("auto", "triton", "lexical", "off"):
        problems.append(f"guardrails.hallucination_scoring must be auto|triton|lexical|off, not {s.guardrails.hallucination_scoring!r}")
    hb = s.guardrails.hallucination_block
    if hb is not None and not s.guardrails.hallucination_alert <= hb <= 1.0:
        problems.append("guardrails.hallucination_block must be null (alert-only) or in [hallucination_alert, 1]")
    if s.guardrails.hallucination_queue_size < 1:
        problems.append("guardrails.hallucination_queue_size must be >= 1")
    if bool(s.server.tls_cert_file) != bool(s.server.tls_key_file):
        problems.append("server.tls_cert_file and server.tls_key_file go together")
    if problems:
        raise ValueError("invalid settings: " + "; ".join(problems))


# ------------------------------------------------------------------------------------------- loading
def to_dict(settings: Settings, *, redact_secrets: bool = True) -> dict[str, dict[str, Any]]:
    """Plain nested dict (JSON-able) of every field; Describe and ``--print-config`` use it. Fields in
    :data:`SECRET_FIELDS` show :data:`REDACTED` per value unless ``redact_secrets=False`` (``replace``)."""
    out: dict[str, dict[str, Any]] = {}
    for section in dataclasses.fields(settings):
        obj = getattr(settings, section.name)
        out[section.name] = {
            f.name: (dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v)
            for f in dataclasses.fields(obj)
            for v in [getattr(obj, f.name)]
        }
    if redact_secrets:
        for section, name in SECRET_FIELDS:
            value = out[section][name]
            out[section][name] = [REDACTED] * len(value) if isinstance(value, list) else REDACTED if value else value
    return out


def _merge(base: dict[str, dict[str, Any]], overrides: Mapping[str, Mapping[str, Any]]) -> dict:
    merged = {k: dict(v) for k, v in base.items()}
    for section, values in overrides.items():
        if section not in merged:
            raise ValueError(f"unknown settings section {section!r}; known: {sorted(merged)}")
        if not isinstance(values, Mapping):
            raise ValueError(f"settings section {section!r} must be a mapping")
        for key, value in values.items():
            if key not in merged[section]:
                raise ValueError(f"unknown setting {section}.{key}")
            current = merged[section][key]
            if isinstance(current, dict) and isinstance(value, Mapping):
                value = {**current, **value}  # partial routing tables update the defaults
            merged[section][key] = value
    return merged


def _section_types() -> dict[str, type]:
    return {f.name: typing.get_type_hints(Settings)[f.name] for f in dataclasses.fields(Settings)}


def _build(data: Mapping[str, Mapping[str, Any]]) -> Settings:
    sections = {}
    for name, cls in _section_types().items():
        hints = typing.get_type_hints(cls)
        values = {k: _coerce(v, hints[k], f"{name}.{k}") for k, v in data.get(name, {}).items()}
        sections[name] = cls(**values)
    return Settings(**sections)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Coerce a YAML/env value to the field's annotated type (strings from the environment included)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, where)
    try:
        if hint is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if hint in (int, float):
            return hint(value)
        if hint is str:
            return str(value)
        if origin is tuple:
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            return tuple(_coerce(v, args[0], where) for v in value)
        if origin in (collections.abc.Mapping, dict):
            if isinstance(value, str):
                value = json.loads(value)
            return {str(k): _coerce(v, args[1], where) for k, v in dict(value).items()}
    except (TypeError, ValueError) as err:
        raise ValueError(f"setting {where}: cannot use {value!r} as {hint}") from err
    return value


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    fields = {name: {f.name for f in dataclasses.fields(cls)} for name, cls in _section_types().items()}
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(env):
        if not key.startswith(ENV_PREFIX) or key in ENV_NOT_SETTINGS:
            continue
        target = ENV_ALIASES.get(key)
        if target is None:
            rest = key[len(ENV_PREFIX) :].lower()
            section, _, name = rest.partition("_")
            if section in fields and name in fields[section]:
                target = (section, name)
        if target is None:
            log.warning("ignoring %s: not a MangaAssist setting", key)
            continue
        value: Any = env[key]
        if target[0] == "routing" and target[1] in ("tiers", "temperatures", "max_tokens"):
            value = json.loads(value)  # a partial table, merged over the current one
        out.setdefault(target[0], {})[target[1]] = value
    return out


def load_settings(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] = os.environ) -> Settings:
    """Defaults <- YAML file (``path`` or ``$MANGAASSIST_CONFIG``) <- ``MANGAASSIST_*`` environment."""
    import yaml

    data = to_dict(Settings())
    path = path or env.get(CONFIG_ENV) or None
    if path:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, Mapping):
            raise ValueError(f"{path}: the settings file must be a mapping of sections")
        data = _merge(data, loaded)
    data = _merge(data, _env_overrides(env))
    return _build(data)
