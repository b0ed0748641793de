"""What the ensemble service costs on top of the model calls it makes.

    python -m benchmarks.service.overhead [--build-dir .build] [--requests 150] [--out benchmarks/results]

Starts Triton + the service (``benchmarks.service.stack``), then measures one request at a time
(closed loop, concurrency 1), interleaving the paths request by request so machine noise hits all alike:

* ``classify``: one ``intent_classifier`` call with tritonclient  vs  the ``Classify`` RPC (one text);
* ``retrieve``: ``query_embedder`` -> ``embedding_adapter`` -> FAISS top-20 (same index, in-process) ->
  ``reranker`` on the 20 pairs, with tritonclient  vs  the ``Retrieve`` RPC (top_k 5, rerank on);
* ``chat``: what the service's Chat path does with the models, done raw -- ``intent_classifier`` and
  ``query_embedder`` concurrently, then (when the predicted intent needs retrieval) adapter -> FAISS ->
  rerank  vs  the ``Chat`` RPC with every intent routed to the template tier (no LLM), guardrails on.

The raw client is ``tritonclient.grpc.aio`` -- the same client library the service's Triton backend uses
-- so the difference is the service: its gRPC hop, admission, validation, guardrails, rules, catalog
lookups, template answer, proto conversion and asyncio scheduling. Messages are held-out intent texts
labelled with a retrieval intent that the rule fast path does not decide (so the classifier always runs
and, when it agrees with the label, the whole retrieval path runs). Budgets are set so generous that no
stage is skipped on either side. Reported per path: p50/p99 and the ratios service/raw.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from benchmarks import common
from benchmarks.service.stack import Stack

log = logging.getLogger("benchmarks.service")

RETRIEVAL_INTENTS = ("product_question", "recommendation", "return_refund", "policy_faq", "price_deal")


class RawPath:
    """The service's model path done directly with ``tritonclient.grpc.aio`` (no service in between)."""

    def __init__(self, url: str, index: Any, *, rerank_top_n: int = 10, top_k: int = 5) -> None:
        from tritonclient.grpc import aio as triton_aio

        self.client = triton_aio.InferenceServerClient(url)
        self.index = index
        self.rerank_top_n = rerank_top_n
        self.top_k = top_k

    async def _infer(self, model: str, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
        from tritonclient.grpc import InferInput, InferRequestedOutput

        items = []
        for name, array in inputs.items():
            item = InferInput(name, list(array.shape), "BYTES" if array.dtype == object else "FP32")
            item.set_data_from_numpy(array)
            items.append(item)
        result = await self.client.infer(model, items, outputs=[InferRequestedOutput(output)])
        return result.as_numpy(output)

    @staticmethod
    def _text(values: Sequence[str]) -> np.ndarray:
        return np.array([[v.encode("utf-8")] for v in values], dtype=object).reshape(len(values), 1)

    async def classify(self, text: str) -> np.ndarray:
        return (await self._infer("intent_classifier", {"TEXT": self._text([text])}, "PROBS"))[0]

    async def embed(self, text: str) -> np.ndarray:
        return (await self._infer("query_embedder", {"TEXT": self._text([text])}, "EMBEDDING"))[0]

    async def retrieve_from(self, text: str, vector: np.ndarray) -> list[Any]:
        adapted = await self._infer("embedding_adapter", {"EMBEDDING": vector.reshape(1, -1).astype(np.float32)}, "ADAPTED")
        candidates = self.index.search(adapted[0], self.rerank_top_n)
        if not candidates:
            return []
        passages = [c.chunk.text for c in candidates]
        scores = await self._infer(
            "reranker", {"QUERY": self._text([text] * len(passages)), "PASSAGE": self._text(passages)}, "SCORE"
        )
        order = np.argsort(-scores.reshape(-1))[: self.top_k]
        return [candidates[i] for i in order]

    async def retrieve(self, query: str) -> list[Any]:
        return await self.retrieve_from(query, await self.embed(query))

    async def chat(self, text: str) -> str:
        from server.intents import INTENT_LABELS

        probs, vector = await asyncio.gather(self.classify(text), self.embed(text))
        intent = INTENT_LABELS[int(np.argmax(probs))]
        if intent in RETRIEVAL_INTENTS:
            await self.retrieve_from(text, vector)
        return intent

    async def close(self) -> None:
        await self.client.close()


def retrieval_texts(data_dir: Path, limit: int) -> list[str]:
    """Held-out messages labelled with an intent that needs retrieval and not decided by the rule fast
    path: the service's full non-LLM path (classify + embed -> adapter -> retrieve -> rerank)."""
    from server.stages.rules import match

    rows = common.read_jsonl(Path(data_dir) / "intents" / "test.jsonl")
    texts = [r["text"] for r in rows if r["label"] in RETRIEVAL_INTENTS and r["text"].strip() and match(r["text"]) is None]
    return list(dict.fromkeys(texts))[:limit]


def stage_sums(timings: Sequence[Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in timings:
        out[t.stage] = out.get(t.stage, 0.0) + t.ms
    return out


async def timed(awaitable: Any) -> tuple[float, Any]:
    """(milliseconds, result) of one awaited call."""
    start = time.perf_counter()
    result = await awaitable
    return (time.perf_counter() - start) * 1000.0, result


async def measure(stack: Stack, texts: Sequence[str], queries: Sequence[str], *, requests: int, warmup: int) -> dict[str, Any]:
    from clients.sdk import AsyncMangaAssistClient
    from server.retrieval.faiss_index import FaissIndex

    raw = RawPath(stack.triton.grpc_url, FaissIndex.load(stack.index_dir))
    lat: dict[str, list[float]] = {k: [] for k in ("raw_classify", "rpc_classify", "raw_retrieve", "rpc_retrieve", "raw_chat", "rpc_chat")}
    stages: dict[str, list[dict[str, float]]] = {"classify": [], "retrieve": [], "chat": []}
    agree = {"chat_intent": 0, "chat_retrieval": 0}
    degraded: dict[str, int] = {}
    async with AsyncMangaAssistClient(stack.target, timeout=60.0) as rpc:
        for i in range(warmup + requests):
            text, query = texts[i % len(texts)], queries[i % len(queries)]
            ms_raw_c, _ = await timed(raw.classify(text))
            ms_rpc_c, reply_c = await timed(rpc.classify([text]))
            ms_raw_r, _ = await timed(raw.retrieve(query))
            ms_rpc_r, reply_r = await timed(rpc.retrieve(query, top_k=5, rerank=True))
            ms_raw_chat, raw_intent = await timed(raw.chat(text))
            # one session per request: unrelated messages in one session would be read as follow-ups
            ms_rpc_chat, reply = await timed(rpc.chat(text, session_id=f"bench-{i}"))
            if i < warmup:
                continue
            for key, ms in (("raw_classify", ms_raw_c), ("rpc_classify", ms_rpc_c), ("raw_retrieve", ms_raw_r),
                            ("rpc_retrieve", ms_rpc_r), ("raw_chat", ms_raw_chat), ("rpc_chat", ms_rpc_chat)):
                lat[key].append(ms)
            stages["classify"].append(stage_sums(reply_c.timings))
            stages["retrieve"].append(stage_sums(reply_r.timings))
            stages["chat"].append(stage_sums(reply.timings))
            agree["chat_intent"] += reply.intent == raw_intent
            agree["chat_retrieval"] += ("rerank" in stage_sums(reply.timings)) == (raw_intent in RETRIEVAL_INTENTS)
            for reason in (*reply.degraded, *reply_r.degraded):
                degraded[reason] = degraded.get(reason, 0) + 1
    await raw.close()

    ops = {}
    for op in ("classify", "retrieve", "chat"):
        r, s = common.latency_summary(lat[f"raw_{op}"]), common.latency_summary(lat[f"rpc_{op}"])
        names = sorted({k for d in stages[op] for k in d})
        ops[op] = {
            "raw": r,
            "service": s,
            "ratio_p50": round(s["p50_ms"] / r["p50_ms"], 3),
            "ratio_p99": round(s["p99_ms"] / r["p99_ms"], 3),
            "overhead_p50_ms": round(s["p50_ms"] - r["p50_ms"], 3),
            "service_stage_p50_ms": {n: round(common.percentile([d[n] for d in stages[op] if n in d], 50), 3) for n in names},
            "service_stage_runs": {n: sum(1 for d in stages[op] if n in d) for n in names},
        }
    return {"ops": ops, "agreement": {k: f"{v}/{requests}" for k, v in agree.items()}, "degraded": degraded}


def render(result: dict[str, Any], device: dict[str, Any], command: str) -> str:
    rows = []
    for op, label in (("classify", "Classify (1 text)"), ("retrieve", "Retrieve (top 5 of 20, reranked)"),
                      ("chat", "Chat, template tier")):
        o = result["ops"][op]
        rows.append([label, common.fmt(o["raw"]["p50_ms"], 2), common.fmt(o["raw"]["p99_ms"], 2),
                     common.fmt(o["service"]["p50_ms"], 2), common.fmt(o["service"]["p99_ms"], 2),
                     f"{o['ratio_p50']:.2f}×", f"{o['ratio_p99']:.2f}×", common.fmt(o["overhead_p50_ms"], 2)])
    stage_rows = []
    for op in ("classify", "retrieve", "chat"):
        o = result["ops"][op]
        for name, ms in o["service_stage_p50_ms"].items():
            stage_rows.append([op, name, common.fmt(ms, 2), o["service_stage_runs"][name]])
    n = result["ops"]["chat"]["raw"]["n"]
    return "\n".join([
        "# Service overhead (closed loop, one request at a time)",
        "",
        f"Measured on {device['cpu_model']} ({device['usable_cores']} usable cores, {device['gpu']}), "
        f"{device['timestamp_utc']}; {n} requests per path, interleaved. Command: `{command}`",
        "",
        common.markdown_table(("path", "raw p50 ms", "raw p99 ms", "service p50 ms", "service p99 ms",
                               "ratio p50", "ratio p99", "overhead p50 ms"), rows),
        "*raw* = the same model calls made directly with tritonclient (grpc.aio) + in-process FAISS; *service* = the",
        "RPC through the MangaAssist service (own process). Ratio = service / raw.",
        f"Chat intent agreement raw vs service: {result['agreement']['chat_intent']}; degraded reasons seen: "
        f"{result['degraded'] or 'none'}. Index: {result['stack']['index_kind']}.",
        "",
        "Service-reported stage timings (p50 ms, from the responses' StageTiming; concurrent stages overlap):",
        "",
        common.markdown_table(("rpc", "stage", "p50 ms", "runs"), stage_rows),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.service.overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=common.DEFAULT_BUILD_DIR)
    parser.add_argument("--repo", type=Path, help="Triton repository (default: <build>/triton/cpu)")
    parser.add_argument("--requests", type=int, default=150, help="measured requests per path")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--out", type=Path, default=common.DEFAULT_RESULTS_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    build = args.build_dir.resolve()
    out = args.out.resolve()
    command = "python -m benchmarks.service.overhead " + shlex.join(argv if argv is not None else sys.argv[1:])
    device = common.device_info()
    texts = retrieval_texts(build / "data", 256)
    random.Random(0).shuffle(texts)
    queries = common.queries(build / "data", 256)
    with Stack(build, (args.repo or build / "triton" / "cpu").resolve(), out / "tmp" / "service") as stack:
        result = asyncio.run(measure(stack, texts, queries, requests=args.requests, warmup=args.warmup))
        result["stack"] = stack.info
    result.update({"device": device, "command": command})
    common.write_json(out / "service_overhead.json", result)
    (out / "service_overhead.md").write_text(render(result, device, command))
    print((out / "service_overhead.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
