"""Async hallucination scoring: claims, scoring logic, the drop-on-full queue, thresholds, review queue."""

from __future__ import annotations

import asyncio
import inspect

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from server.hallucination import (
    HallucinationConfig,
    HallucinationScorer,
    ReviewQueue,
    ScoringJob,
    ScoringQueue,
    build_scoring_queue,
    extract_claims,
    fact_text,
    make_submit_hook,
)
from server.hallucination.facts import sentences, windows
from server.hallucination.scorer import HallucinationResult
from server.retrieval.base import Chunk, Product, ScoredChunk
from server.settings import GuardrailSettings

pytestmark = pytest.mark.L0

VOL3 = Product(
    asin="B0TESTVOL3", title="Ramen Samurai Academy, Vol. 3", series="Ramen Samurai Academy", volume=3,
    author="Ren Arisawa", publisher="Kodama Press", format="tankobon", language="English", age_rating="Teen",
    genres=("shonen",), price=12.99, stock=4, release_date="2019-05-05",
)
BOXSET = Product(
    asin="B0TESTBOX1", title="Ashfall Chronicle Complete Box Set (Vols. 1-4)", series="Ashfall Chronicle", volume=None,
    author="Yuna Kurosaki", publisher="Tsukimi Books", format="box_set", language="English", age_rating="Mature",
    genres=("seinen",), price=49.99, stock=0, release_date="2021-11-02",
)


def value(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    return registry.get_sample_value(name, labels or {}) or 0.0


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


class FakeBackend:
    """Fabricated probability = 0.05 when the claim's key fact is in the source, else ``miss``;
    claims containing a key of ``fixed`` get that probability regardless of the source."""

    def __init__(self, miss: float = 0.9, fixed: dict[str, float] | None = None, delay_s: float = 0.0) -> None:
        self.miss = miss
        self.fixed = fixed or {}
        self.delay_s = delay_s
        self.calls: list[tuple[list[str], list[str]]] = []

    async def __call__(self, sources: list[str], claims: list[str]) -> np.ndarray:
        self.calls.append((sources, claims))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        out = []
        for s, c in zip(sources, claims):
            p = next((v for k, v in self.fixed.items() if k in c), None)
            if p is None:
                facts = [t for t in ("$12.99", "Ren Arisawa", "box set", "30 days", "$49.99") if t in c]
                p = 0.05 if facts and all(f in s for f in facts) else self.miss
            out.append(logit(p))
        return np.array(out, dtype=np.float32)


# ------------------------------------------------------------------------------------------ claims
def test_sentence_split_keeps_abbreviations_and_prices() -> None:
    text = "Ramen Samurai Academy Vol. 3 costs $12.99. It ships in 1-2 days, e.g. by UPS. Enjoy!"
    assert sentences(text) == ["Ramen Samurai Academy Vol. 3 costs $12.99.", "It ships in 1-2 days, e.g. by UPS.", "Enjoy!"]


def test_extract_claims_keeps_checkable_sentences_only() -> None:
    answer = (
        "Great choice! Ramen Samurai Academy vol. 3 costs $12.99. It is written by Ren Arisawa. "
        "I think you will love it. It came out on May 5, 2019. You may also like the anime. "
        "You can return it within 30 days. It's a paperback edition, and it's in stock."
    )
    claims = extract_claims(answer, [VOL3])
    texts = [c.text for c in claims]
    assert texts == [
        "Ramen Samurai Academy vol. 3 costs $12.99.",
        "It is written by Ren Arisawa.",
        "It came out on May 5, 2019.",
        "You can return it within 30 days.",
        "It's a paperback edition, and it's in stock.",
    ]
    kinds = {c.text: set(c.kinds) for c in claims}
    assert {"price", "volume"} <= kinds[texts[0]]
    assert "author" in kinds[texts[1]] and "date" in kinds[texts[2]] and "days" in kinds[texts[3]]
    assert {"format", "stock"} <= kinds[texts[4]]
    assert all(c.asins == (VOL3.asin,) for c in claims)  # one product in play: pronouns refer to it


def test_a_question_or_a_greeting_is_not_a_claim() -> None:
    answer = ("Yes! Do you have Ramen Samurai Academy 3 in English? Did you mean Ramen Samurai Academy vol. 3? "
              "Hi there! Happy reading! Is the paperback in stock?")
    assert extract_claims(answer, [VOL3]) == []
    assert [c.text for c in extract_claims("Did you mean vol. 3? It costs $12.99.", [VOL3])] == ["It costs $12.99."]


def test_extract_claims_attributes_named_products() -> None:
    claims = extract_claims(
        "Ramen Samurai Academy vol. 3 is $12.99, while the Ashfall Chronicle box set is $49.99. Both are great.",
        [VOL3, BOXSET],
    )
    assert len(claims) == 1 and set(claims[0].asins) == {VOL3.asin, BOXSET.asin}
    assert extract_claims("Hello! Happy reading :)", [VOL3]) == []
    assert extract_claims("", []) == []


def test_fact_text_and_windows() -> None:
    text = fact_text(VOL3)
    for fact in ("Ramen Samurai Academy, Vol. 3", "Volume: 3", "Ren Arisawa", "$12.99", "tankobon", "2019-05-05", "4 in stock"):
        assert fact in text
    assert "Volume:" not in fact_text(BOXSET) and "out of stock" in fact_text(BOXSET)
    assert fact_text({"asin": VOL3.asin, **{k: getattr(VOL3, k) for k in ("title", "series", "volume", "author",
                     "publisher", "format", "language", "price", "stock", "release_date")}}) == text
    long = " ".join(f"Sentence number {i} says returns take {i} days." for i in range(40))
    parts = windows(long, max_chars=200)
    assert len(parts) > 5 and all(len(p) <= 200 for p in parts)
    assert " ".join(parts) == long


# ------------------------------------------------------------------------------------------ scoring
async def test_claim_takes_best_source_answer_takes_worst_claim() -> None:
    backend = FakeBackend(fixed={"Hope": 0.6})
    scorer = HallucinationScorer(backend)
    unrelated = ScoredChunk(Chunk("c1", "policy:x", "policy", "Standard shipping is free over $35."), 0.9)
    # Grounded: the price is on VOL3's fact sheet (min over sources picks it despite the unrelated chunk).
    res = await scorer.score("Ramen Samurai Academy vol. 3 costs $12.99.", sources=[unrelated], products=[VOL3])
    assert res.score == pytest.approx(0.05, abs=1e-6)
    assert res.claims[0].source == fact_text(VOL3)
    assert len(backend.calls) == 1 and len(backend.calls[0][0]) == 2  # one batched call: 1 claim x 2 sources
    # One fabricated claim (author not on any source) -> the answer is as bad as that claim.
    res = await scorer.score("Ramen Samurai Academy vol. 3 costs $12.99. It is written by Kaito Hoshino.", products=[VOL3])
    assert [round(c.probability, 2) for c in res.claims] == [0.05, 0.9]
    assert res.score == pytest.approx(0.9, abs=1e-6) and res.worst.claim == "It is written by Kaito Hoshino."


async def test_retrieved_chunks_ground_policy_claims() -> None:
    scorer = HallucinationScorer(FakeBackend())
    policy = Chunk("p1", "policy:returns-window", "policy", "You can return most physical items within 30 days of delivery.")
    res = await scorer.score("You can return it within 30 days.", sources=[ScoredChunk(policy, 0.8)])
    assert res.score == pytest.approx(0.05, abs=1e-6)
    res = await scorer.score("You can return it within 30 days.", sources=["Returns are accepted within 14 days."])
    assert res.score == pytest.approx(0.9, abs=1e-6)


async def test_no_checkable_claims_or_no_sources_scores_zero() -> None:
    backend = FakeBackend()
    scorer = HallucinationScorer(backend)
    assert (await scorer.score("Hi! Thanks for asking, happy reading.", products=[VOL3])).score == 0.0
    res = await scorer.score("Your order ships in 2 days.")  # checkable, but nothing to check it against
    assert res.score == 0.0 and res.unverifiable == 1 and res.claims == ()
    assert backend.calls == []


async def test_asin_products_resolved_through_catalog() -> None:
    class Catalog:
        def get_product(self, asin: str) -> Product | None:
            return VOL3 if asin == VOL3.asin else None

    scorer = HallucinationScorer(FakeBackend(), catalog=Catalog())
    res = await scorer.score("It costs $12.99.", products=[VOL3.asin, "B0UNKNOWN0"])
    assert res.score == pytest.approx(0.05, abs=1e-6)


async def test_backend_row_mismatch_is_a_bug() -> None:
    async def broken(sources: list[str], claims: list[str]) -> np.ndarray:
        return np.zeros(len(sources) + 1, dtype=np.float32)

    with pytest.raises(ValueError, match="this is a bug"):
        await HallucinationScorer(broken).score("It costs $12.99.", products=[VOL3])


# ------------------------------------------------------------------------------------------ queue
def job(answer: str, session: str = "s1", request: str = "r1", products=(VOL3,)) -> ScoringJob:
    return ScoringJob(session_id=session, request_id=request, answer=answer, products=tuple(products))


async def test_submit_never_blocks_and_counts_drops() -> None:
    registry = CollectorRegistry()
    backend = FakeBackend(delay_s=5.0)  # a very slow scorer
    queue = ScoringQueue(HallucinationScorer(backend), None, registry, maxsize=4, workers=1)
    queue.start()
    try:
        await asyncio.sleep(0)
        accepted = []
        # submit is synchronous and the event loop does not run between the 50 calls: a submit that waited for
        # room would never return (only the worker frees a slot). The counts show each was answered at once.
        assert not inspect.iscoroutinefunction(queue.submit)
        for i in range(50):
            accepted.append(queue.submit(job("It costs $12.99.", request=f"r{i}")))
        # the worker took one job off the queue, then 4 fit; everything else is dropped
        assert 4 <= sum(accepted) <= 5
        assert value(registry, "mangaassist_hallucination_dropped_total", {"reason": "queue_full"}) == 50 - sum(accepted)
        assert value(registry, "mangaassist_hallucination_queue_depth") == 4
    finally:
        await queue.stop(drain=False)
    assert value(registry, "mangaassist_hallucination_dropped_total", {"reason": "shutdown"}) == 4
    assert queue.submit(job("It costs $12.99.")) is False
    assert value(registry, "mangaassist_hallucination_dropped_total", {"reason": "stopped"}) == 1


async def test_threshold_actions_alert_and_block() -> None:
    registry = CollectorRegistry()
    review = ReviewQueue(":memory:")
    backend = FakeBackend(fixed={"ALERT": 0.55, "BLOCK": 0.75, "LOW": 0.2})
    blocking = HallucinationConfig(GuardrailSettings(hallucination_block=0.7))  # the service's default is alert-only
    queue = ScoringQueue(HallucinationScorer(backend), review, registry, workers=2, config=blocking)
    queue.start()
    queue.submit(job("LOW It costs $13.99.", session="low"))
    queue.submit(job("ALERT It costs $14.99.", session="alert", request="req-alert"))
    queue.submit(job("BLOCK It costs $99.99.", session="block", request="req-block"))
    await queue.stop(drain=True)

    assert value(registry, "mangaassist_hallucination_alerts_total") == 2
    assert value(registry, "mangaassist_hallucination_blocks_total") == 1
    assert value(registry, "mangaassist_hallucination_jobs_total", {"outcome": "scored"}) == 3
    assert value(registry, "mangaassist_hallucination_score_count") == 3
    assert not queue.is_session_blocked("low") and not queue.is_session_blocked("alert")
    assert queue.is_session_blocked("block")
    rows = review.pending()
    assert [(r.request_id, round(r.score, 2)) for r in rows] == [("req-block", 0.75), ("req-alert", 0.55)]
    assert rows[1].claim == "ALERT It costs $14.99." and rows[1].session_id == "alert"
    assert rows[1].sources == (fact_text(VOL3),)
    assert queue.unblock_session("block") and not queue.is_session_blocked("block")


async def test_exactly_at_thresholds() -> None:
    blocking = HallucinationConfig(GuardrailSettings(hallucination_block=0.7))  # the service's default is alert-only
    queue = ScoringQueue(HallucinationScorer(FakeBackend()), ReviewQueue(":memory:"), CollectorRegistry(), config=blocking)
    await queue.record(job("x", session="a"), HallucinationResult(0.5))
    await queue.record(job("x", session="b"), HallucinationResult(0.7))
    await queue.record(job("x", session="c"), HallucinationResult(0.4999))
    assert queue.review_store.count_pending() == 2
    assert not queue.is_session_blocked("a") and queue.is_session_blocked("b") and not queue.is_session_blocked("c")
    assert not queue.is_session_blocked("")  # anonymous sessions are never blocked


async def test_block_expires() -> None:
    now = [1000.0]
    cfg = HallucinationConfig(GuardrailSettings(hallucination_block=0.7, hallucination_block_ttl_s=60.0,
                                              hallucination_max_blocked_sessions=2))
    queue = ScoringQueue(HallucinationScorer(FakeBackend()), None, CollectorRegistry(), config=cfg, monotonic=lambda: now[0])
    for s in ("a", "b", "c"):
        await queue.record(job("x", session=s), HallucinationResult(0.9))
    assert not queue.is_session_blocked("a")  # bounded: the oldest block was forgotten
    assert queue.is_session_blocked("b") and queue.is_session_blocked("c")
    now[0] += 61
    assert not queue.is_session_blocked("b")


async def test_daily_average_gauge_and_alert() -> None:
    registry = CollectorRegistry()
    clock = [86400.0 * 20000 + 10]
    queue = ScoringQueue(HallucinationScorer(FakeBackend()), None, registry, clock=lambda: clock[0])
    for _ in range(99):
        await queue.record(job("x"), HallucinationResult(0.0))
    await queue.record(job("x"), HallucinationResult(0.02))
    assert value(registry, "mangaassist_hallucination_daily_avg_score") == pytest.approx(0.0002)
    assert value(registry, "mangaassist_hallucination_daily_avg_alert") == 0
    for _ in range(4):
        await queue.record(job("x"), HallucinationResult(0.9))  # mean 3.62/104 ~ 0.0348 > 0.03
    assert value(registry, "mangaassist_hallucination_daily_avg_score") == pytest.approx((0.02 + 3.6) / 104)
    assert value(registry, "mangaassist_hallucination_daily_avg_alert") == 1
    clock[0] += 86400  # a new UTC day starts from scratch
    await queue.record(job("x"), HallucinationResult(0.01))
    assert value(registry, "mangaassist_hallucination_daily_avg_score") == pytest.approx(0.01)
    assert value(registry, "mangaassist_hallucination_daily_avg_alert") == 0


async def test_daily_threshold_is_configurable() -> None:
    registry = CollectorRegistry()
    cfg = HallucinationConfig(GuardrailSettings(hallucination_daily_avg_alert=0.5, hallucination_daily_avg_min_samples=3))
    queue = ScoringQueue(HallucinationScorer(FakeBackend()), None, registry, config=cfg)
    for _ in range(2):
        await queue.record(job("x"), HallucinationResult(0.9))
    assert value(registry, "mangaassist_hallucination_daily_avg_alert") == 0  # too few samples yet
    await queue.record(job("x"), HallucinationResult(0.9))
    assert value(registry, "mangaassist_hallucination_daily_avg_alert") == 1


async def test_worker_survives_backend_errors_and_timeouts() -> None:
    registry = CollectorRegistry()
    calls = {"n": 0}

    async def flaky(sources: list[str], claims: list[str]) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("triton down")
        if calls["n"] == 2:
            await asyncio.sleep(10)
        return np.full(len(sources), logit(0.05), dtype=np.float32)

    cfg = HallucinationConfig(GuardrailSettings(hallucination_job_timeout_s=0.05))
    queue = ScoringQueue(HallucinationScorer(flaky), None, registry, config=cfg)
    queue.start()
    for i in range(3):
        assert queue.submit(job("It costs $12.99.", request=f"r{i}"))
    await queue.stop(drain=True, timeout_s=2.0)
    assert value(registry, "mangaassist_hallucination_jobs_total", {"outcome": "error"}) == 1
    assert value(registry, "mangaassist_hallucination_jobs_total", {"outcome": "timeout"}) == 1
    assert value(registry, "mangaassist_hallucination_jobs_total", {"outcome": "scored"}) == 1


async def test_submit_hook_filters_and_never_raises() -> None:
    from server.schema import ChatResult

    registry = CollectorRegistry()
    queue = ScoringQueue(HallucinationScorer(FakeBackend()), None, registry)
    hook = make_submit_hook(queue)
    base = dict(intent="product_question", intent_confidence=0.9, model="m", request_id="r1")
    hook(ChatResult(answer="It costs $12.99.", tier="small", **base), session_id="s", products=[VOL3])
    hook(ChatResult(answer="It costs $12.99.", tier="template", **base), session_id="s")
    hook(ChatResult(answer="Sorry, I can't help.", tier="small", blocked=True, **base), session_id="s")
    hook(ChatResult(answer="  ", tier="small", **base), session_id="s")
    hook(object(), session_id="s")  # not a ChatResult at all: ignored, no exception
    assert queue.depth == 1
    from server.schema import Card

    hook(ChatResult(answer="It costs $49.99.", tier="small", cards=(Card(BOXSET.asin, BOXSET.title, 49.99, "USD", False),), **base),
         session_id="s", products=[VOL3])
    assert queue._queue._queue[-1].products == (VOL3, BOXSET.asin)
    queue.start()
    await queue.stop(drain=True)
    assert value(registry, "mangaassist_hallucination_jobs_total", {"outcome": "scored"}) == 2


async def test_build_scoring_queue_reads_settings_and_shares_registry() -> None:
    from server.metrics import Metrics
    from server.settings import Settings

    metrics = Metrics()
    settings = Settings().replace(guardrails={"hallucination_alert": 0.4, "hallucination_block": 0.8})
    q1 = build_scoring_queue(settings, FakeBackend(), metrics=metrics)
    q2 = build_scoring_queue(settings, FakeBackend(), metrics=metrics)  # same registry: no duplicate error
    assert q1.metrics is q2.metrics
    assert (q1.config.alert_threshold, q1.config.block_threshold) == (0.4, 0.8)
    q1.metrics.alerts.inc()
    assert value(metrics.registry, "mangaassist_hallucination_alerts_total") == 1


# ------------------------------------------------------------------------------------------ review queue
def test_review_queue_persists(tmp_path) -> None:
    db = tmp_path / "review" / "queue.sqlite"
    q = ReviewQueue(db)
    a = q.add("s1", "r1", "answer one", "claim one", 0.55, ["src a", "src b"])
    b = q.add("s2", "r2", "answer two", "claim two", 0.91, [])
    q.close()

    q = ReviewQueue(db)  # reopened: rows survived
    pending = q.pending()
    assert [p.id for p in pending] == [b, a]  # worst first
    assert pending[1].sources == ("src a", "src b") and pending[1].answer == "answer one"
    assert q.mark_reviewed(b, verdict="fabricated") is True
    assert q.mark_reviewed(b) is False  # already reviewed
    assert q.mark_reviewed(9999) is False
    assert [p.id for p in q.pending(limit=10)] == [a]
    assert q.get(b).verdict == "fabricated" and q.get(b).reviewed_at is not None
    assert q.count_pending() == 1
    q.close()


async def test_lexical_fallback_scorer() -> None:
    from server.hallucination import lexical_score_fn

    scorer = HallucinationScorer(lexical_score_fn())
    good = await scorer.score("Ramen Samurai Academy vol. 3 costs $12.99 and is written by Ren Arisawa.", products=[VOL3])
    bad = await scorer.score("Ramen Samurai Academy vol. 3 costs $15.99 and is written by Kaito Hoshino.", products=[VOL3])
    assert good.score < 0.1 and bad.score > 0.5


async def test_claims_about_a_product_ignore_other_products_sources() -> None:
    vol4 = Product(**{**VOL3.__dict__, "asin": "B0TESTVOL4", "title": "Ramen Samurai Academy, Vol. 4", "volume": 4, "price": 13.99})
    vol4_chunk = ScoredChunk(Chunk("c4", "product:B0TESTVOL4", "product", fact_text(vol4), asin=vol4.asin), 0.9)
    policy = ScoredChunk(Chunk("p1", "policy:returns", "policy", "Returns are accepted within 30 days."), 0.5)
    scorer = HallucinationScorer(FakeBackend())
    (cands,) = scorer.pairs_for(extract_claims("Vol. 3 costs $13.99.", [VOL3]), [vol4_chunk, policy], [VOL3])
    assert cands == [fact_text(VOL3), "Returns are accepted within 30 days."]  # vol. 4's sheet is not evidence
    (cands,) = scorer.pairs_for(extract_claims("Vol. 3 costs $13.99.", [VOL3, vol4]), [vol4_chunk, policy], [VOL3, vol4])
    assert fact_text(vol4) in cands  # nothing in the claim says which product: everything is a candidate


def test_series_mentions_resolve_to_the_stated_volume() -> None:
    vol4 = Product(**{**VOL3.__dict__, "asin": "B0TESTVOL4", "title": "Ramen Samurai Academy, Vol. 4", "volume": 4})
    (claim,) = extract_claims("Ramen Samurai Academy vol. 4 costs $13.99.", [VOL3, vol4])
    assert claim.asins == (vol4.asin,)
    (claim,) = extract_claims("Every Ramen Samurai Academy volume costs $12.99.", [VOL3, vol4])
    assert set(claim.asins) == {VOL3.asin, vol4.asin}


async def test_triton_score_fn_sends_source_claim_rows_in_slices() -> None:
    from server.hallucination import triton_score_fn

    class Result:
        def __init__(self, rows: int) -> None:
            self.rows = rows

        def as_numpy(self, name: str) -> np.ndarray:
            assert name == "SCORE"
            return np.arange(self.rows, dtype=np.float32).reshape(self.rows, 1)

    class Client:
        def __init__(self) -> None:
            self.calls = []

        async def infer(self, model, inputs, outputs, client_timeout, **identity):  # + model_version, request_id
            self.calls.append((model, [(i.name(), i.shape(), i.datatype()) for i in inputs], client_timeout))
            return Result(inputs[0].shape()[0])

    client = Client()
    fn = triton_score_fn(client, max_batch_size=4, timeout_s=1.5)
    out = await fn([f"s{i}" for i in range(10)], [f"c{i}" for i in range(10)])
    assert out.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert [c[1] for c in client.calls] == [
        [("SOURCE", [n, 1], "BYTES"), ("CLAIM", [n, 1], "BYTES")] for n in (4, 4, 2)
    ]
    assert {c[0] for c in client.calls} == {"hallucination_scorer"} and client.calls[0][2] == 1.5
    await fn.close()  # a borrowed client is not closed


def test_evidence_hint_marks_unmatched_fact_tokens() -> None:
    from server.hallucination.facts import fact_tokens, model_input

    source = fact_text(VOL3)
    assert fact_tokens("It came out on May 5, 2019 and costs $12.99 as a box set.") == ["2019-05-05", "12.99", "box set"]
    assert fact_tokens("It came out in May 2019.") == ["2019-05"]
    assert model_input(source, "Ramen Samurai Academy vol. 3 costs $12.99.") == (source, "Ramen Samurai Academy vol. 3 costs $12.99. [matched]")
    assert model_input(source, "It was released on 5 May 2019 by Kodama Press.")[1].endswith("[matched]")
    _, claim = model_input(source, "It is written by Kaito Hoshino, costs $13.99 and is out of stock.")
    assert claim.endswith("[unmatched: 13.99, Kaito, Hoshino, out of stock]")


async def test_the_service_default_is_alert_only() -> None:
    """Issue 22.6: on held-out real + mutated answers the scorer misses the blocking target (precision 63.9% /
    recall 53.6% at 0.7, 32% of grounded template answers flagged), so the service's default never blocks; an
    answer scoring 0.99 alerts and goes to review, and its session stays open. Blocking is opt-in."""
    from server.metrics import Metrics
    from server.settings import Settings

    settings = Settings()
    assert settings.guardrails.hallucination_block is None
    metrics = Metrics()
    queue = build_scoring_queue(settings, FakeBackend(fixed={"BAD": 0.99}), metrics=metrics)
    assert queue.config.block_threshold is None
    queue.start()
    queue.submit(job("BAD It costs $99.99.", session="s"))
    await queue.stop(drain=True)
    assert value(metrics.registry, "mangaassist_hallucination_alerts_total") == 1
    assert value(metrics.registry, "mangaassist_hallucination_blocks_total") == 0
    assert not queue.is_session_blocked("s")
    with pytest.raises(ValueError, match="hallucination_block"):
        Settings().replace(guardrails={"hallucination_block": 0.3})  # below the alert threshold
