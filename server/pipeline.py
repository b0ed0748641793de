"""The request path. Transport-free: dataclasses in (server/schema.py), dataclasses out; the servicer
converts at the boundary. Read ``Pipeline._turn`` top-down -- one line per stage, each stage in its own
module under ``server/stages/``; ``chat`` (the whole answer) and ``chat_stream`` (the answer's text as the
tier produces it, then the same result) both run it:

    admission -> validation -> session (one store call: rate limits, blocked?, recent turns) -> input guardrail
    -> the follow-up resolved into the text ("what about vol 4?" -> "how much is Naruto vol 4?") -> rule fast
    path -> classify (+ embed, concurrently) -> adapter -> retrieve -> rerank -> facts (entity resolution: which products,
    or "we don't carry X"; the policy sections; the intent the answer addresses) -> tier routing -> answer ->
    output guardrail -> response -> the turn stored in the session -> (after it is sent) queue the answer
    for async hallucination scoring, and the turn for the traffic log (``server/traffic``: a
    bounded queue and a background writer; the message as the input guardrail redacted it)

Conversation memory (``server/sessions``) is bounded like a model call: a slow or unreachable store answers the
turn without memory (``degraded: session_unavailable``). A chat makes two store round trips: one before its answer
(limits, block flag, turns) and the turn's write after it.

Answers are grounded by design: the facts stage resolves the series / volume / edition the customer means
(``server/retrieval/entities.py``: lexical + alias + fuzzy + dense), and the template tier composes the answer
only from those catalog rows, the order row and quoted policy sentences (``server/llm/templates.py``). The
retrieval query carries English glosses of Japanese store words (``server/retrieval/query.py``).

Hallucination scoring (``server/hallucination``) never runs on the request path: once the response has
gone out (``after_response``, the servicer's RPC-done callback) the answer, its retrieved chunks and the
products in play are put on a bounded queue (a full queue drops the job and counts it); a background
worker scores it. A session whose answer scored >= the block threshold gets the safe template answer
(``blocked``, guardrail ``hallucination``) until the block expires.

Budgets: the request deadline is min(caller's gRPC deadline, ``budgets.total_ms``) for the model path;
each backend call gets min(its stage budget, what is left - margin) (``server/budget.py``); the answer
stage gets ``budgets.answer_ms`` bounded by the caller's deadline. When Triton is down, slow or shedding,
Chat degrades where that is safe -- the rule path still decides, retrieval is dropped, the template tier
answers -- and says so in ``degraded``; only a spent budget (DEADLINE_EXCEEDED) or a broken invariant
fails the call. Classify and Retrieve have nothing to degrade to, so there backend errors are the answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator, Callable, Sequence

import numpy as np

from server.admission import Admission
from server.aio import concurrently
from server.backends.base import ModelBackend
from server.budget import Budget
from server.errors import CustomerRateLimited, SessionRateLimited, SessionUnavailable, BackendError, BackendOverloaded, BackendTimeout, BudgetExceeded, Overloaded
from server.guardrails.base import GuardrailAction, Guardrails, InputScreen
from server.intents import INTENT_LABELS
from server.llm.base import LLMAnswer
from server.llm.router import TierRouter
from server.ids import find_asins, find_order_id
from server.llm.templates import Facts
from server.metrics import Metrics
from server.request import RequestContext, bind_request_id, new_request_id
from server.retrieval.base import Product, ScoredChunk, VectorIndex
from server.retrieval.entities import EntityResolver
from server.retrieval.query import expand as retrieval_query
from server.schema import (
    Card,
    ChatInput,
    ChatResult,
    ClassifyResult,
    FeedbackInput,
    IntentResult,
    RetrieveInput,
    RetrieveResult,
    ServiceDescription,
    TierRouteInfo,
    Usage,
)
from server.settings import Settings
from server.sessions.store import SessionStore, SessionView
from server.rollout.feedback import KINDS as FEEDBACK_KINDS, FeedbackStore
from server.errors import InvalidRequest
from server.sessions.turns import turn_of as sessions_turn
from server.stages import answer as answer_stage
from server.stages import followup as followup_stage
from server.stages import classify as classify_stage
from server.stages import embed as embed_stage
from server.stages import entities as entities_stage
from server.stages import guard, rerank as rerank_stage, retrieve as retrieve_stage, routing, validation
from server.stages.retrieve import Catalog
from server.telemetry import StageTimings

log = logging.getLogger(__name__)

#: Intents whose answers show product cards.
CARD_INTENTS = frozenset({"product_question", "recommendation", "price_deal", ""})
RuleMatcher = Callable[[str], Any]  # server.stages.rules.match: text -> RuleMatch(intent, rule, order_id) | None
#: ``after_response(fn)``: run ``fn()`` once the response has been sent (the servicer's RPC-done callback).
AfterResponse = Callable[[Callable[[], None]], None]
#: The guardrail action of an answer refused because the session is blocked by the hallucination scorer.
SESSION_BLOCKED = GuardrailAction("hallucination", "blocked", "session blocked: an earlier answer scored >= the block threshold")


@dataclass(frozen=True)
class Understanding:
    intent: IntentResult
    vector: np.ndarray | None  # the base query embedding, when one was computed
    order_id: str | None = None

    def answering(self, intent: str) -> "Understanding":
        """The same understanding, addressing ``intent`` (the facts stage's reading; the confidence stays the
        classifier's, so a low-confidence label still routes to the template tier)."""
        if not intent or intent == self.intent.intent:
            return self
        return replace(self, intent=replace(self.intent, intent=intent))


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        backend: ModelBackend,
        *,
        catalog: Catalog,
        index: VectorIndex,
        guardrails: Guardrails,
        router: TierRouter,
        metrics: Metrics | None = None,
        admission: Admission | None = None,
        rules: RuleMatcher | None = None,
        scoring: Any | None = None,
        sessions: SessionStore | None = None,
        rollout: Any | None = None,
        feedback: FeedbackStore | None = None,
        traffic: Any | None = None,
    ) -> None:
        """``scoring``: the async hallucination :class:`~server.hallucination.worker.ScoringQueue` (or None);
        ``sessions``: conversation memory (server/sessions; None = every turn stands alone); ``traffic``: the
        traffic log's :class:`~server.traffic.recorder.TrafficRecorder` (None = no log, no cost counters)."""
        if rules is None:
            from server.stages.rules import match as rules  # the rule fast path (regex, < 1 ms)
        self.settings = settings
        self.backend = backend
        self.catalog = catalog
        self.entities = EntityResolver(catalog)  # type: ignore[arg-type]
        self.index = index
        self.guardrails = guardrails
        self.router = router
        self.metrics = metrics or Metrics()
        self.admission = admission or Admission(settings.server.max_concurrency, self.metrics)
        self.rules = rules
        self.rerank_estimate = rerank_stage.LatencyEstimate(
            probe_after_s=settings.budgets.rerank_probe_after_s,
            on_decision=lambda decision: self.metrics.rerank_decisions.labels(decision).inc())
        self.scoring = scoring
        self.sessions = sessions
        if sessions is not None:
            followup_stage.warm()  # the follow-up relation classifier, trained once per process (~1-2 s), not on a chat
        self.rollout = rollout  # server/rollout RolloutController: which classifier version answers (None = no rollout)
        self.feedback_store = feedback if feedback is not None else FeedbackStore()  # the Feedback RPC's records
        self.traffic = traffic
        self._submit_for_scoring = None
        if scoring is not None:
            scoring.blocks = sessions  # the scorer's blocks live in the session store when there is one
            from server.hallucination.worker import make_submit_hook

            self._submit_for_scoring = make_submit_hook(scoring)

    # ================================================================================== Chat
    async def chat(
        self, request: ChatInput, *, caller_remaining_s: float | None = None, after_response: AfterResponse | None = None
    ) -> ChatResult:
        """The whole answer at once. ``after_response(fn)`` runs ``fn`` once the response has been sent
        (default: at once)."""
        async for item in self._turn(request, caller_remaining_s, after_response, stream=False):
            result = item  # the turn's last item is its ChatResult
        assert isinstance(result, ChatResult)
        return result

    def chat_stream(
        self, request: ChatInput, *, caller_remaining_s: float | None = None, after_response: AfterResponse | None = None
    ) -> AsyncIterator[str | ChatResult]:
        """Yield ``str`` deltas (each screened by the output guardrails), then one final :class:`ChatResult`."""
        return self._turn(request, caller_remaining_s, after_response, stream=True)

    async def _turn(
        self, request: ChatInput, caller_remaining_s: float | None, after_response: AfterResponse | None, *, stream: bool
    ) -> AsyncIterator[str | ChatResult]:
        """One chat turn, stage by stage: the answer's text as it comes (``stream``), then the :class:`ChatResult`."""
        ctx = self._context(request.request_id, caller_remaining_s)
        ctx.model_versions.update(self.rollout.pin(request.session_id) if self.rollout is not None else {})  # 0 version
        with self.admission.slot():                                                       # 1a admission
            message = self._validate_message(request, ctx)                                 # 1b validation
            session = await self._session(request.session_id, request.customer_id, ctx)   # 2 rate limits, blocked?, memory
            screen = self._screen_input(message, session.blocked, ctx)                    # 2b input guardrail
            if screen.blocked:
                refusal = self._blocked(request, screen.actions, ctx)
                yield refusal.answer
                self._log_later(refusal, request.session_id, screen.text, None, stream, after_response)
                yield refusal
                return
            history = session.turns
            follow = followup_stage.resolve(screen.text, history, self.entities)
            text = follow.text                                                            # 2c the follow-up spelled out
            seen = await self._understand(text, ctx)                                      # 3 rules, 4a classify, 4b embed
            chunks = await self._retrieve(text, seen, ctx)                                # 5a adapter, 5b retrieve, 5c rerank
            facts = await self._facts(text, seen, chunks, request.customer_id, ctx)       # 6a facts + the intent answered
            seen = seen.answering(facts.intent)
            chunks = entities_stage.grounded_context(chunks, facts)  # the policy sections the facts found lead
            route = routing.route(seen.intent.intent, seen.intent.confidence, self.settings.routing)  # 6b routing
            llm_request = answer_stage.build_request(route, text, chunks, ctx, request.session_id,
                                                     [(t.message, t.answer) for t in history])
            answer: LLMAnswer | None = None
            async for piece in answer_stage.answer(self.router, route, llm_request, facts, ctx, stream=stream):  # 7 answer
                if isinstance(piece, LLMAnswer):
                    answer = piece
                else:  # streamed text, screened piece by piece (the final answer is screened whole below)
                    yield self._screen_delta(piece, route.tier, chunks, text, facts)
            assert answer is not None  # the answer stage's last item
            answer, actions = await self._screen_answer(answer, llm_request, facts, chunks, ctx)  # 8 output guardrail
            result = await self._chat_result(request, seen, answer, (*screen.actions, *actions), chunks, facts, ctx)  # 9 response
            await self._remember(request.session_id, screen.text, text, facts, result, ctx, follow)  # 9b the turn
        await self._attribute(request, text, seen, result, ctx, after_response)           # 9c versions: feedback, guards, shadow
        self._score_later(result, request.session_id, chunks, facts, after_response)      # 10 async scoring
        self._log_later(result, request.session_id, screen.text, seen.vector, stream, after_response)  # 11 traffic log
        yield result

    # ------------------------------------------------------------------ Chat stages, in order
    async def _session(self, session_id: str, customer_id: str, ctx: RequestContext) -> SessionView:
        """One store call: the session's and the customer's rate limits, whether the hallucination scorer blocked
        the session (on any pod), its recent turns. No store, or an outage (degraded; the limits are not enforced
        then): no memory, and the pod's own blocks."""
        view = SessionView()
        if self.sessions is not None and (session_id or customer_id):
            with ctx.timings.stage("session"):
                try:
                    view = await self.sessions.begin(session_id, customer_id)
                except SessionUnavailable:
                    ctx.degrade("session_unavailable")
            if view.limited is not None:
                s = self.settings.sessions
                if view.limited == "customer":
                    raise CustomerRateLimited(f"this customer sends faster than {s.customer_rate_per_s:g} messages/s",
                                              retry_after_s=1.0 / s.customer_rate_per_s)
                raise SessionRateLimited(f"session {session_id!r} sends faster than {s.rate_per_s:g} messages/s",
                                         retry_after_s=1.0 / s.rate_per_s)
        if self.scoring is not None and session_id and not view.blocked and self.scoring.is_session_blocked(session_id):
            view = replace(view, blocked=True)
        return view

    async def _remember(
        self, session_id: str, message: str, resolved: str, facts: Facts, result: ChatResult, ctx: RequestContext,
        follow: Any = None,
    ) -> None:
        """Store this turn for the next one's follow-ups, before the response goes out: a follow-up sent the moment
        this answer arrives -- to any pod -- must find it (not waiting made a follow-up on another process miss the
        turn under load). An outage only degrades: the answer is already made."""
        if self.sessions is None or not session_id or "session_unavailable" in ctx.degraded:
            return
        turn = sessions_turn(message, resolved, facts, result, follow)
        try:
            await self.sessions.append(session_id, turn)
        except SessionUnavailable:
            ctx.degrade("session_unavailable")

    def _validate_message(self, request: ChatInput, ctx: RequestContext) -> str:
        with ctx.timings.stage("validation"):
            validation.validate_customer_id(request.customer_id, limits=self.settings.server)
            return validation.validate_text(request.message, field="message", limits=self.settings.server)

    def _screen_input(self, message: str, blocked: bool, ctx: RequestContext) -> InputScreen:
        """A session blocked by the hallucination scorer is refused before its message is screened."""
        if blocked:
            return InputScreen(message, (SESSION_BLOCKED,), blocked=True)
        return guard.screen_input(self.guardrails, message, ctx)

    async def _understand(self, text: str, ctx: RequestContext) -> Understanding:
        """Rule fast path; on a miss, classify and (speculatively) embed side by side."""
        with ctx.timings.stage("rules"):
            rule = self.rules(text)
        if rule is not None:
            intent = classify_stage.from_rule(rule.intent, rule.rule)
            vector = await self._embed_or_degrade(retrieval_query(text), ctx) if self._needs_retrieval(rule.intent) else None
            return Understanding(intent, vector, rule.order_id)
        intent, vector = await concurrently(
            self._classify_or_degrade(text, ctx), self._embed_or_degrade(retrieval_query(text), ctx)
        )
        return Understanding(intent, vector, find_order_id(text))

    async def _classify_or_degrade(self, text: str, ctx: RequestContext) -> IntentResult:
        try:
            (result,) = await classify_stage.classify(self.backend, [text], ctx)
            return result
        except BackendError as err:
            self._raise_if_spent(err, ctx)
            ctx.degrade("classifier_unavailable")
            return classify_stage.UNKNOWN

    async def _embed_or_degrade(self, text: str, ctx: RequestContext) -> np.ndarray | None:
        try:
            return await embed_stage.embed(self.backend, text, ctx)
        except BackendError as err:
            self._raise_if_spent(err, ctx)
            ctx.degrade("retrieval_unavailable")
            return None

    async def _retrieve(self, text: str, seen: Understanding, ctx: RequestContext) -> list[ScoredChunk]:
        """adapter -> vector search -> rerank; any failure drops to less context, never to an error."""
        if seen.vector is None or not self._needs_retrieval(seen.intent.intent):
            return []
        cfg = self.settings.retrieval
        vector = await self._adapt_or_base(seen.vector, ctx)
        try:
            candidates = await retrieve_stage.search(self.index, vector, cfg.rerank_top_n, ctx)
        except BackendError as err:
            self._raise_if_spent(err, ctx)
            ctx.degrade("retrieval_unavailable")
            return []
        chunks, _ = await rerank_stage.rerank(
            self.backend, retrieval_query(text), candidates, cfg.top_k, ctx,
            budgets=self.settings.budgets, estimate=self.rerank_estimate,
            fusion_weight=cfg.rerank_fusion_weight,
        )
        return chunks

    async def _adapt_or_base(self, vector: np.ndarray, ctx: RequestContext) -> np.ndarray:
        if not self.settings.triton.use_adapter:
            return vector
        try:
            return await embed_stage.adapt(self.backend, vector, ctx)
        except BackendError as err:
            self._raise_if_spent(err, ctx)
            ctx.degrade("adapter_skipped")  # the base embedding still searches the same index, less precisely
            return vector

    async def _facts(
        self, text: str, seen: Understanding, chunks: Sequence[ScoredChunk], customer_id: str, ctx: RequestContext
    ) -> Facts:
        """Products, policies and the intent answered; the orders named, on the calling customer's account only."""
        return await entities_stage.facts_for(
            self.entities, text, seen.intent.intent, seen.order_id, chunks, self.settings.retrieval.max_cards, ctx,
            orders=self.catalog.get_order, customer_id=customer_id,
        )

    async def _screen_answer(self, answer: LLMAnswer, llm_request, facts: Facts, chunks, ctx: RequestContext):
        screened = guard.screen_output(self.guardrails, answer, chunks, llm_request.user_message, ctx)
        if not screened.needs_fallback:
            return screened.answer, screened.actions
        ctx.degrade("output_guard_fallback")
        fallback = await self.router.template.generate(llm_request, facts)
        return fallback, screened.actions

    async def _chat_result(
        self,
        request: ChatInput,
        seen: Understanding,
        answer: LLMAnswer,
        actions: Sequence[GuardrailAction],
        chunks: Sequence[ScoredChunk],
        facts: Facts,
        ctx: RequestContext,
    ) -> ChatResult:
        cards = await self._cards(answer, facts, seen.intent.intent, ctx)
        self._count(seen.intent, answer.tier, ctx)
        return ChatResult(
            answer=answer.text,
            intent=seen.intent.intent,
            intent_confidence=seen.intent.confidence,
            tier=answer.tier,
            model=answer.model,
            request_id=ctx.request_id,
            cards=tuple(cards),
            timings=tuple(ctx.timings.as_list()),
            degraded=tuple(ctx.degraded),
            guardrail_actions=tuple(actions),
            rule_decided=seen.intent.rule_decided,
            usage=Usage(answer.input_tokens, answer.output_tokens, answer.cost_usd),
            model_versions={} if seen.intent.rule_decided else dict(ctx.model_versions),
        )

    async def _cards(self, answer: LLMAnswer, facts: Facts, intent: str, ctx: RequestContext) -> list[Card]:
        """Cards for the products the answer names (ASINs checked against the catalog), else -- for
        product intents -- the products the message and context point at. Prices always from the catalog."""
        named = [*answer.product_asins, *find_asins(answer.text)]
        products = await retrieve_stage.resolve(self.catalog, named, ctx)
        if not products and intent in CARD_INTENTS:
            products = list(facts.products)
        return [_card(p) for p in products[: self.settings.retrieval.max_cards]]

    def _score_later(
        self, result: ChatResult, session_id: str, chunks: Sequence[ScoredChunk], facts: Facts,
        after_response: AfterResponse | None,
    ) -> None:
        """Queue the answer for hallucination scoring once the response is out. Never waits or raises."""
        submit = self._submit_for_scoring
        if submit is None:
            return

        def job() -> None:
            submit(result, session_id=session_id, chunks=tuple(chunks), products=facts.products)

        if after_response is None:
            job()
            return
        try:
            after_response(job)
        except Exception:  # noqa: BLE001 -- scoring is best-effort; the answer must not fail
            log.exception("could not defer hallucination scoring; this is a bug")

    def _log_later(
        self, result: ChatResult, session_id: str, message: str, vector: np.ndarray | None, stream: bool,
        after_response: AfterResponse | None,
    ) -> None:
        """Hand the turn to the traffic log once the response is out (server/traffic). Never waits or raises."""
        if self.traffic is not None:
            self.traffic.defer(result, session_id=session_id, message=message, vector=vector, stream=stream,
                               after_response=after_response)

    async def _attribute(
        self, request: ChatInput, text: str, seen: Understanding, result: ChatResult, ctx: RequestContext,
        after_response: AfterResponse | None,
    ) -> None:
        """The answer, attributed to the versions that gave it: kept for Feedback, counted by the canary guards,
        and (after the response is out) sent to the shadow version (server/rollout). Never raises. Kept before the
        response goes out: a Feedback for it may land on another replica the moment it arrives (state.backend)."""
        await self.feedback_store.aremember(result.request_id, request.session_id, versions=result.model_versions,
                               intent=result.intent, confidence=result.intent_confidence)
        if self.rollout is not None and result.model_versions:
            classify_ms = next((ms for stage, ms in result.timings if stage == "classify"), None)
            self.rollout.observe(text, seen.intent, result.model_versions, classify_ms,
                                 "classifier_unavailable" in ctx.degraded, after_response)

    def _blocked(self, request: ChatInput, actions: Sequence[GuardrailAction], ctx: RequestContext) -> ChatResult:
        answer = self.router.template.blocked()
        self.metrics.tiers.labels("template").inc()
        return ChatResult(
            answer=answer.text,
            intent="",
            intent_confidence=0.0,
            tier=answer.tier,
            model=answer.model,
            request_id=ctx.request_id,
            timings=tuple(ctx.timings.as_list()),
            degraded=tuple(ctx.degraded),
            guardrail_actions=tuple(actions),
            blocked=True,
        )

    def _screen_delta(self, text: str, tier: str, chunks: Sequence[ScoredChunk], message: str, facts: Facts) -> str:
        """A streamed piece, screened on its own (ASINs, prices, PII, competitors); dropped if unfixable.
        The products in play (catalog rows the facts stage resolved) are the piece's products, so their catalog
        prices pass -- without them every priced line of a recommendation was stripped and the stream showed
        nothing. The final message carries the whole answer screened again -- that one is authoritative."""
        piece = LLMAnswer(text=text, tier=tier, model=tier, product_asins=tuple(p.asin for p in facts.products))
        screened = self.guardrails.screen_output(piece, chunks, message)
        return "" if screened.needs_fallback else screened.answer.text

    # ================================================================================== Classify
    async def classify(
        self, texts: Sequence[str], *, request_id: str = "", caller_remaining_s: float | None = None
    ) -> ClassifyResult:
        ctx = self._context(request_id, caller_remaining_s, batch=True)
        with self.admission.slot():
            with ctx.timings.stage("validation"):
                texts = validation.validate_texts(texts, limits=self.settings.server)
            with ctx.timings.stage("rules"):
                matches = [self.rules(t) for t in texts]
            results: list[IntentResult | None] = [
                classify_stage.from_rule(m.intent, m.rule) if m is not None else None for m in matches
            ]
            todo = [i for i, r in enumerate(results) if r is None]
            if todo:
                ctx.budget.widen("classify", self.settings.budgets.classify_per_text_ms * (len(todo) - 1))
                with _no_fallback(ctx):
                    classified = await classify_stage.classify(self.backend, [texts[i] for i in todo], ctx)
                for i, result in zip(todo, classified):
                    results[i] = result
            final = tuple(r for r in results if r is not None)
            for r in final:
                self.metrics.intents.labels(r.intent, "rule" if r.rule_decided else "model").inc()
            return ClassifyResult(results=final, request_id=ctx.request_id, timings=tuple(ctx.timings.as_list()))

    # ================================================================================== Retrieve
    async def retrieve(self, request: RetrieveInput, *, caller_remaining_s: float | None = None) -> RetrieveResult:
        ctx = self._context(request.request_id, caller_remaining_s, batch=True)
        with self.admission.slot():
            with ctx.timings.stage("validation"):
                query = validation.validate_text(request.query, field="query", limits=self.settings.server)
                top_k = validation.validate_top_k(request.top_k, limits=self.settings.server)
            with _no_fallback(ctx):
                vector = await embed_stage.embed(self.backend, query, ctx)
                vector = await self._adapt_or_base(vector, ctx)
                pool = max(top_k, self.settings.retrieval.rerank_top_n) if request.rerank else top_k
                candidates = await retrieve_stage.search(self.index, vector, pool, ctx)
            if request.rerank:
                extra_pairs = len(candidates) - self.settings.retrieval.rerank_top_n
                ctx.budget.widen("rerank", self.settings.budgets.rerank_per_pair_ms * extra_pairs)
                chunks, reranked = await rerank_stage.rerank(
                    self.backend, query, candidates, top_k, ctx,
                    budgets=self.settings.budgets, estimate=self.rerank_estimate,
                    fusion_weight=self.settings.retrieval.rerank_fusion_weight,
                )
            else:
                chunks, reranked = list(candidates[:top_k]), False
            self.metrics.count_degraded(ctx.degraded)
            return RetrieveResult(
                chunks=tuple(chunks),
                reranked=reranked,
                request_id=ctx.request_id,
                degraded=tuple(ctx.degraded),
                timings=tuple(ctx.timings.as_list()),
            )

    # ================================================================================== Describe
    async def describe(self) -> ServiceDescription:
        s = self.settings
        available = set(self.router.available)
        return ServiceDescription(
            service_version=s.server.service_version,
            model_versions=await self.backend.model_versions(),
            limits={
                "max_concurrency": s.server.max_concurrency,
                "max_message_bytes": s.server.max_message_bytes,
                "max_text_chars": s.server.max_text_chars,
                "max_classify_texts": s.server.max_classify_texts,
                "default_top_k": s.server.default_top_k,
                "max_top_k": s.server.max_top_k,
            },
            budgets={
                "total_ms": s.budgets.total_ms,
                "classify_ms": s.budgets.classify_ms,
                "embed_ms": s.budgets.embed_ms,
                "adapter_ms": s.budgets.adapter_ms,
                "retrieve_ms": s.budgets.retrieve_ms,
                "rerank_ms": s.budgets.rerank_ms,
                "rerank_min_remaining_ms": s.budgets.rerank_min_remaining_ms,
                "answer_ms": s.budgets.answer_ms,
                "triton_margin_ms": s.triton.call_margin_ms,
            },
            tiers=tuple(
                TierRouteInfo(
                    intent=intent,
                    tier=s.routing.tiers[intent],
                    temperature=s.routing.temperatures[intent],
                    max_tokens=s.routing.max_tokens[intent],
                    available=s.routing.tiers[intent] in available,
                )
                for intent in INTENT_LABELS
            ),
            intents=INTENT_LABELS,
            retrieval_backend=s.retrieval.backend,
            backend_ready=await self.backend.is_ready(),
            llm_tiers=tuple(self.router.available),
        )

    # ================================================================================== Feedback
    async def feedback(self, request: FeedbackInput) -> bool:
        """A customer's verdict on one answer; False when its request id is unknown or too old to attribute."""
        if not request.request_id or request.kind not in FEEDBACK_KINDS:
            raise InvalidRequest(f"feedback needs the answer's request_id and a kind ({', '.join(FEEDBACK_KINDS)})")
        record = await self.feedback_store.arecord(request.request_id, request.session_id, request.kind, request.comment)
        if record is not None and self.rollout is not None:
            self.rollout.on_feedback(record)
        if record is not None and self.traffic is not None:
            self.traffic.feedback_later(record.request_id, record.kind)  # onto the turn's traffic-log row
        return record is not None

    # ================================================================================== helpers
    def _context(self, request_id: str, caller_remaining_s: float | None, *, batch: bool = False) -> RequestContext:
        """``batch``: Classify / Retrieve, whose budget follows the caller's deadline (server/budget.py)."""
        budget = Budget(
            self.settings.budgets, caller_remaining_s=caller_remaining_s, margin_ms=self.settings.triton.call_margin_ms,
            batch=batch,
        )
        ctx = RequestContext(request_id or new_request_id(), budget, StageTimings(self.metrics))
        bind_request_id(ctx.request_id)  # every model call of this request sends it as Triton's request id
        return ctx

    def _needs_retrieval(self, intent: str) -> bool:
        return not intent or intent in self.settings.retrieval.retrieval_intents

    @staticmethod
    def _raise_if_spent(err: BackendError, ctx: RequestContext) -> None:
        """A timeout that used up the whole budget is the request's deadline, not a degradable hiccup."""
        if isinstance(err, BackendTimeout) and ctx.budget.spent():
            raise BudgetExceeded(f"the request's budget was spent waiting for {err.model}") from err
        log.warning("degrading request %s: %s", ctx.request_id, err)

    def _count(self, intent: IntentResult, tier: str, ctx: RequestContext) -> None:
        if intent.intent:
            self.metrics.intents.labels(intent.intent, "rule" if intent.rule_decided else "model").inc()
        self.metrics.tiers.labels(tier).inc()
        self.metrics.count_degraded(ctx.degraded)


class _no_fallback:
    """For RPCs whose whole point is the model call (Classify, Retrieve): a shedding backend is
    RESOURCE_EXHAUSTED for our caller too, and a backend timeout is the caller's DEADLINE_EXCEEDED."""

    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, BackendOverloaded):
            raise Overloaded(f"model backend is shedding load ({exc.model}); retry with backoff", reason=exc.reason) from exc
        if isinstance(exc, BackendTimeout):
            raise BudgetExceeded(f"{exc.model} did not answer within the request's budget") from exc
        return False


def _card(p: Product) -> Card:
    return Card(asin=p.asin, title=p.title, price=p.price, currency="USD", in_stock=p.stock > 0)

