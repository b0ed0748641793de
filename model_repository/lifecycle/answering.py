"""The model gate's answers: the service's request path answering with a pinned classifier version.

``python -m model_repository.lifecycle.answering --triton URL --champion 1 --challenger 2 --records R.jsonl [--config C]``
prints one JSON document: every record's ChatResponse (as a dict) answered with the champion, and -- only for
the records it would answer differently -- with the challenger. The gate (model_repository/lifecycle/answers.py)
judges them on the golden dimensions, running this module in a child process: each gate run gets a fresh pipeline
(settings, metrics registry, event loop) and a hard timeout.

The pipeline is the service's own (:class:`~server.pipeline.Pipeline` over the components
:func:`~server.app.build_components` builds from the service's settings: catalog, index, guardrails, tiers,
routing) with the classifier pinned to one version on Triton. The embedder, adapter and reranker come from the
same Triton when it serves them, else from the deterministic fake backend (both versions alike; the output names
which). Budgets are wide: a classify timeout on a busy box would change an answer, not measure a model.

Why one pass with the champion is enough for the records the challenger answers alike. The classifier reaches an
answer only through the request's intent and its route (server/stages/routing.py: tier, temperature,
max_tokens; the confidence is read only against ``routing.min_confidence``). The text it classifies, the
retrieval, the facts stage and the template tier are the same for both versions, and rule-decided records never
call the classifier. So a record whose two versions give the same intent *and* the same route gets the same
answer from either -- byte for byte with the deterministic template tier, from the same distribution with a
sampling LLM tier. Each classify call of the champion's pass is therefore also asked of the challenger
(:class:`_Probe`) and the record marked when the routes differ; only marked records are answered again.
tests/unit/test_rollout_answers.py answers every record both ways and checks the claim.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

_record: contextvars.ContextVar[str] = contextvars.ContextVar("gate_record", default="")


class _Pinned:
    """A model backend whose classifier is pinned to ``version``; the other models from ``rest``."""

    def __init__(self, classifier: Any, rest: Any, version: str) -> None:
        self.classifier, self.rest, self.version = classifier, rest, version

    async def classify(self, texts, *, timeout_s: float, version: str | None = None) -> np.ndarray:
        return await self.classifier.classify(texts, timeout_s=timeout_s, version=self.version)

    async def embed(self, texts, *, timeout_s: float):
        return await self.rest.embed(texts, timeout_s=timeout_s)

    async def adapt(self, vectors, *, timeout_s: float):
        return await self.rest.adapt(vectors, timeout_s=timeout_s)

    async def rerank(self, query, passages, *, timeout_s: float):
        return await self.rest.rerank(query, passages, timeout_s=timeout_s)

    async def is_ready(self) -> bool:
        return True

    async def model_versions(self) -> dict[str, str]:
        return {}

    async def close(self) -> None:
        return None


class _Probe(_Pinned):
    """Pinned to the champion; each classify call is also asked of the challenger, and the record (the task's
    context) marked when the two would route differently."""

    def __init__(self, classifier: Any, rest: Any, champion: str, challenger: str, routing: Any) -> None:
        super().__init__(classifier, rest, champion)
        self.challenger, self.routing = challenger, routing
        self.differs: dict[str, list[tuple[Any, Any]]] = {}

    async def classify(self, texts, *, timeout_s: float, version: str | None = None) -> np.ndarray:
        mine, theirs = await asyncio.gather(
            self.classifier.classify(texts, timeout_s=timeout_s, version=self.version),
            self.classifier.classify(texts, timeout_s=timeout_s, version=self.challenger))
        for a, b in zip(mine, theirs):
            ra, rb = self._route(a), self._route(b)
            if ra != rb:
                self.differs.setdefault(_record.get(), []).append((ra, rb))
        return mine

    def _route(self, row: np.ndarray) -> Any:
        from server.stages.classify import from_probs
        from server.stages.routing import route

        result = from_probs(row)
        return route(result.intent, result.confidence, self.routing)


def gate_settings(settings: Any, triton_url: str | None = None) -> Any:
    """The service's settings for the gate: no memory, scoring or rollout; wide budgets (module docstring)."""
    wide = {"total_ms": 60_000.0, "classify_ms": 30_000.0, "embed_ms": 30_000.0, "adapter_ms": 30_000.0,
            "retrieve_ms": 30_000.0, "rerank_ms": 30_000.0, "answer_ms": 60_000.0}
    return settings.replace(
        **({"triton": {"url": triton_url}} if triton_url else {}), budgets=wide,
        guardrails={"hallucination_scoring": "off"}, sessions={"enabled": False}, rollout={"file": ""},
    )


async def _answer_all(pipeline: Any, records: Sequence[dict[str, Any]], concurrency: int, tag: str) -> dict[str, Any]:
    """record id -> ChatResponse as a dict, or {"error": the exception's class}."""
    from google.protobuf.json_format import MessageToDict

    from server.convert import chat_to_pb
    from server.schema import ChatInput

    sem = asyncio.Semaphore(max(1, concurrency))

    async def one(rec: dict[str, Any]) -> tuple[str, Any]:
        async with sem:
            _record.set(rec["id"])
            try:
                result = await pipeline.chat(ChatInput(message=rec["message"], request_id=f"gate-{tag}-{rec['id']}",
                                                       customer_id=rec.get("customer_id") or ""))
            except Exception as err:  # noqa: BLE001 -- judged as a failed call (every dimension fails)
                return rec["id"], {"error": type(err).__name__}
            return rec["id"], MessageToDict(chat_to_pb(result), preserving_proto_field_name=True)

    return dict(await asyncio.gather(*(one(r) for r in records)))


async def answer_records(
    settings: Any, components: Any, records: Sequence[dict[str, Any]], *, classifier: Any, rest: Any, champion: str,
    challenger: str, concurrency: int = 4, every: bool = False,
) -> dict[str, Any]:
    """The champion answers every record (probing the challenger's route at each classify call); the challenger
    answers the records it routes differently (``every``: all of them -- the test of the claim above)."""
    if str(champion) == str(challenger):
        raise ValueError(f"champion and challenger are both version {champion}")
    from server.llm.router import TierRouter
    from server.llm.templates import TemplateTier
    from server.metrics import Metrics
    from server.pipeline import Pipeline

    def pipeline(backend: Any) -> Any:
        return Pipeline(settings, backend, catalog=components.catalog, index=components.index,
                        guardrails=components.guardrails, router=TierRouter(TemplateTier(), components.tiers),
                        metrics=Metrics(), rules=components.rules)

    probe = _Probe(classifier, rest, champion, challenger, settings.routing)
    first = await _answer_all(pipeline(probe), records, concurrency, f"v{champion}")
    differing = [r for r in records if every or r["id"] in probe.differs]
    second = await _answer_all(pipeline(_Pinned(classifier, rest, challenger)), differing, concurrency, f"v{challenger}")
    return {"champion": champion, "challenger": challenger, "answers": {champion: first, challenger: second},
            "differing": [r["id"] for r in records if r["id"] in probe.differs]}


async def _served(backend: Any, settings: Any) -> bool:
    t = settings.triton
    try:
        return bool(await backend.triton.is_ready((t.embedder_model, t.adapter_model, t.reranker_model)))
    except Exception:  # noqa: BLE001 -- unreachable / not served: the fake backend stands in (reported)
        return False


async def run(triton_url: str, champion: str, challenger: str, records: list[dict[str, Any]], *,
              config: str | None = None, concurrency: int = 4) -> dict[str, Any]:
    from server.app import build_components
    from server.backends.fake import FakeBackend
    from server.settings import load_settings

    settings = gate_settings(load_settings(config), triton_url)
    components = build_components(settings)
    real = components.backend
    try:
        served = await _served(real, settings)
        out = await answer_records(settings, components, records, classifier=real, rest=real if served else FakeBackend(),
                                   champion=champion, challenger=challenger, concurrency=concurrency)
    finally:
        await real.close()
        for close in components.closers:
            close()
    out["backends"] = "triton" if served else "classifier on triton; embedder/adapter/reranker fake (not served)"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model_repository.lifecycle.answering", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--triton", required=True)
    p.add_argument("--champion", required=True)
    p.add_argument("--challenger", required=True)
    p.add_argument("--records", required=True, type=Path, help="JSONL: id, message, customer_id")
    p.add_argument("--config", help="the service's config.yaml (default: the defaults + MANGAASSIST_* env)")
    p.add_argument("--concurrency", type=int, default=4)
    args = p.parse_args(argv)
    records = [json.loads(line) for line in args.records.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = asyncio.run(run(args.triton, args.champion, args.challenger, records, config=args.config,
                          concurrency=args.concurrency))
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
