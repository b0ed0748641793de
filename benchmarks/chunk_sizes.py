"""Effective retrieval quality (Recall@3 x Precision@3) per chunk size, on the real documents and the served embedder.

The real documents (``.build/data/documents.jsonl``: catalog product descriptions, review summaries, store policies)
are re-chunked with the index's own chunker (model_repository/index/chunking.py, the served ``embed_tokenizer``'s
tokenizer.json) at 128, 256 and 512 tokens for every source type, and at the variable sizes the index is built with
(``DEFAULT_SIZES``: product 256, policy 512, review 128). Each chunk set is embedded the way the index is: the served
``query_embedder`` ONNX then the ``embedding_adapter`` ONNX (the files Triton serves from ``.build/triton/cpu``, run
in-process with onnxruntime, truncation at the served tokenizer's 256), put in the service's FaissIndex, and searched
with the golden set's retrieval queries (``retrieval.query.expand`` of the message, embedder -> adapter).

Queries and relevance: golden records of a retrieval intent whose entity names a carried product (``entity.asin``)
or a policy (``entity.policy_id``). Expected documents: ``product:<asin>`` and ``policy:<policy_id>``; relevant
chunks: chunks of an expected document or of the product's ``review:<asin>``. Recall@3 = expected documents with a
chunk in the top 3 / expected documents; Precision@3 = relevant chunks in the top 3 / 3; both averaged over queries,
effective quality = mean Recall@3 x mean Precision@3 (first stage only, no reranker).

Corpus: every policy, the product and review documents of every golden ASIN, ``--neighbours`` other items of the
same series per golden ASIN (the hard negatives: other volumes and formats) and ``--distractors`` random items
(seeded); ``--full`` uses every document (the 128-token set then needs ~7,400 new embeddings). Chunks whose text is
in the built index reuse its vectors (the build embedded them through Triton); a sample of them is embedded again
in-process and compared (``twin_min_cosine``), the rest are embedded here.

    .venv/bin/python -m benchmarks.chunk_sizes [--neighbours 3] [--distractors 150] [--full]

Writes benchmarks/results/chunk_sizes/chunk_sizes.{json,md}; benchmarks.decisions reads the JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from benchmarks import common
from model_repository.index.chunking import DEFAULT_OVERLAP, DEFAULT_SIZES, chunk_documents
from server.retrieval.base import Chunk
from server.retrieval.faiss_index import FaissIndex
from server.retrieval.query import expand as retrieval_query
from server.settings import RetrievalSettings

OUT = common.DEFAULT_RESULTS_DIR / "chunk_sizes"
TRITON = common.DEFAULT_BUILD_DIR / "triton" / "cpu"
SOURCE_TYPES = ("product", "policy", "review")
OPTIONS: Mapping[str, Mapping[str, int]] = {
    "128": {t: 128 for t in SOURCE_TYPES},
    "256": {t: 256 for t in SOURCE_TYPES},
    "512": {t: 512 for t in SOURCE_TYPES},
    "variable": dict(DEFAULT_SIZES),
}
K = 3
EmbedFn = Callable[[list[str]], np.ndarray]


# ------------------------------------------------------------------------------------------- inputs
def golden_queries(golden: Sequence[Mapping[str, Any]], asins: set[str]) -> list[dict[str, Any]]:
    """Golden records that name a document the index holds, with their expected documents."""
    intents = set(RetrievalSettings().retrieval_intents)
    out = []
    for r in golden:
        e = r.get("entity") or {}
        expected = []
        if e.get("asin") and e.get("carried") and e["asin"] in asins:
            expected.append(f"product:{e['asin']}")
        if e.get("policy_id"):
            expected.append(f"policy:{e['policy_id']}")
        if expected and r.get("intent") in intents:
            relevant = set(expected) | ({f"review:{e['asin']}"} if f"product:{e.get('asin')}" in expected else set())
            out.append({"id": r["id"], "message": r["message"], "intent": r["intent"], "expected": expected,
                        "relevant": sorted(relevant)})
    return out


def corpus(docs: Sequence[Mapping[str, Any]], catalog: Sequence[Mapping[str, Any]], queries: Sequence[Mapping[str, Any]],
           neighbours: int, distractors: int, seed: int = 0) -> list[Mapping[str, Any]]:
    """Every policy + the golden ASINs' documents + same-series neighbours + random distractors (deterministic)."""
    wanted = {d.split(":", 1)[1] for q in queries for d in q["expected"] if d.startswith("product:")}
    by_series: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for item in catalog:
        by_series[item["series"]].append(item)
    series_of = {item["asin"]: item["series"] for item in catalog}
    volume = {item["asin"]: item.get("volume") or 0 for item in catalog}
    keep = set(wanted)
    for asin in sorted(wanted):
        others = sorted((i for i in by_series[series_of[asin]] if i["asin"] != asin),
                        key=lambda i: (abs((i.get("volume") or 0) - volume[asin]), i["asin"]))
        keep.update(i["asin"] for i in others[:neighbours])
    rest = sorted({i["asin"] for i in catalog} - keep)
    keep.update(random.Random(seed).sample(rest, min(distractors, len(rest))))
    return [d for d in docs if d["source_type"] == "policy" or d.get("asin") in keep]


# ------------------------------------------------------------------------------------------- the served embedder
def served_embedder(triton_dir: Path = TRITON, threads: int = 2, batch_size: int = 32) -> EmbedFn:
    """texts -> adapted, L2-normalised vectors: the served tokenizer (truncation at its max_length), the
    query_embedder ONNX and the embedding_adapter ONNX, the files Triton serves, in-process."""
    from tokenizers import Tokenizer

    from model_repository import export, spec

    max_length = next(t.max_length for t in spec.TOKENIZERS if t.name == "embed_tokenizer")
    tokenizer = Tokenizer.from_file(str(triton_dir / "embed_tokenizer" / "1" / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding()
    encoder = export.session(triton_dir / "query_embedder_onnx" / "1" / "model.onnx", threads=threads)
    adapter = export.session(triton_dir / "embedding_adapter" / "1" / "model.onnx", threads=threads)
    adapter_input = adapter.get_inputs()[0].name

    def embed(texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            enc = tokenizer.encode_batch(texts[i : i + batch_size])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            base = encoder.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
            out.append(adapter.run(None, {adapter_input: base.astype(np.float32)})[0])
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 384), np.float32)

    return embed


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def built_vectors(index_dir: Path) -> dict[str, np.ndarray]:
    """text hash -> the built index's vector (embedded through Triton at build time)."""
    if not (index_dir / "faiss_meta.json").is_file():
        return {}
    index = FaissIndex.load(index_dir)
    vectors = index._index.reconstruct_n(0, len(index))  # noqa: SLF001 -- a flat index keeps its rows
    return {_key(c.text): v for c, v in zip(index.chunks, vectors)}


class VectorCache:
    """Chunk vectors by text: the built index's where it has the text, else the in-process embedder's."""

    def __init__(self, embed: EmbedFn, known: dict[str, np.ndarray]) -> None:
        self.embed, self.known = embed, known
        self.embedded = 0
        self.seconds = 0.0

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        missing = sorted({_key(t): t for t in texts if _key(t) not in self.known}.items())
        if missing:
            started = time.perf_counter()
            new = self.embed([t for _, t in missing])
            self.seconds += time.perf_counter() - started
            self.embedded += len(missing)
            self.known.update({k: v for (k, _), v in zip(missing, new)})
        return np.stack([self.known[_key(t)] for t in texts])


# ------------------------------------------------------------------------------------------- the metric
def per_query(hits: Sequence[Sequence[Chunk]], queries: Sequence[Mapping[str, Any]], k: int = K) -> np.ndarray:
    """(n, 2): each query's Recall@k and Precision@k."""
    out = []
    for top, q in zip(hits, queries):
        docs = [c.doc_id for c in top[:k]]
        out.append((len(set(q["expected"]) & set(docs)) / len(q["expected"]), sum(d in q["relevant"] for d in docs) / k))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def score(hits: Sequence[Sequence[Chunk]], queries: Sequence[Mapping[str, Any]], k: int = K) -> dict[str, float]:
    r, p = per_query(hits, queries, k).mean(axis=0)
    return {"recall@3": round(float(r), 4), "precision@3": round(float(p), 4), "effective": round(float(r * p), 4)}


def paired_ci(a: np.ndarray, b: np.ndarray, rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval (queries resampled, both options alike) of effective(a) - effective(b)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(rounds, len(a)))
    ea = a[idx, 0].mean(axis=1) * a[idx, 1].mean(axis=1)
    eb = b[idx, 0].mean(axis=1) * b[idx, 1].mean(axis=1)
    lo, hi = np.percentile(ea - eb, [2.5, 97.5])
    return round(float(lo), 4), round(float(hi), 4)


def evaluate(docs: Sequence[Mapping[str, Any]], queries: Sequence[Mapping[str, Any]], tokenizer: Any, cache: VectorCache,
             query_vectors: np.ndarray, options: Mapping[str, Mapping[str, int]] = OPTIONS) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    per: dict[str, np.ndarray] = {}
    signatures: dict[str, str] = {}
    for name, sizes in options.items():
        chunks = chunk_documents(docs, tokenizer, sizes=sizes, overlap=DEFAULT_OVERLAP)
        index = FaissIndex(query_vectors.shape[1])
        index.add(chunks, cache.vectors([c.text for c in chunks]))
        hits = [[s.chunk for s in top] for top in index.search_many(query_vectors, K)]
        per[name] = per_query(hits, queries)
        by_type: dict[str, int] = defaultdict(int)
        for c in chunks:
            by_type[c.source_type] += 1
        signature = _key("\x00".join(c.text for c in chunks))
        same_as = next((other for other, sig in signatures.items() if sig == signature), "")
        signatures[name] = signature
        rows[name] = {"sizes": dict(sizes), "chunks": len(chunks), "chunks_by_type": dict(by_type), "same_chunks_as": same_as,
                      **score(hits, queries),
                      "by_kind": {kind: score([h for h, q in zip(hits, queries) if _kind(q) == kind], [q for q in queries if _kind(q) == kind])
                                  for kind in ("product", "policy") if any(_kind(q) == kind for q in queries)}}
    base = "variable" if "variable" in rows else next(iter(rows))
    for name in rows:  # paired: the same queries under both chunkings
        rows[name]["vs_" + base + "_ci95"] = list(paired_ci(per[name], per[base])) if name != base else None
    return rows


def _kind(q: Mapping[str, Any]) -> str:
    return "policy" if all(e.startswith("policy:") for e in q["expected"]) else "product"


def recommend(rows: Mapping[str, Any], doc_tokens: Mapping[str, int]) -> dict[str, Any]:
    """The option with the best effective quality (ties: the one the index is built with, then the larger chunks)."""
    order = ["variable", "512", "256", "128"]
    best = max(order, key=lambda k: (rows[k]["effective"], -order.index(k)))
    runner = max((k for k in order if k != best and not rows[k]["same_chunks_as"] and k != rows[best]["same_chunks_as"]),
                 key=lambda k: rows[k]["effective"], default=None)
    longest = max(doc_tokens.values())
    smallest = {t: rows[best]["sizes"][t] for t in doc_tokens}
    trigger = (f"re-run when a source type's longest document passes its chunk size in the pick (today: "
               + ", ".join(f"{t} {doc_tokens[t]} tokens vs {smallest[t]}" for t in sorted(doc_tokens))
               + "; the served tokenizer truncates at 256, so a chunk above 254 content tokens is embedded only in part")
    why = ""
    if runner is not None:
        ci = rows[runner].get("vs_variable_ci95") if best == "variable" else None  # runner minus variable, paired
        extra = rows[runner]["chunks"] / rows[best]["chunks"] - 1
        why = (f"{runner} scores {rows[runner]['effective'] - rows[best]['effective']:+.4f}"
               + (f" (95% CI {ci[0]:+.4f} .. {ci[1]:+.4f}: {'within noise' if ci[0] <= 0 <= ci[1] else 'a real difference'})" if ci else "")
               + f" with {extra:+.0%} chunks to embed, store and search; "
               + ("sizes with the same chunks score the same: " + ", ".join(k for k in rows if rows[k]["same_chunks_as"]) + " cut the documents "
                  "exactly as " + ", ".join(sorted({rows[k]['same_chunks_as'] for k in rows if rows[k]['same_chunks_as']})) + " does"
                  if any(rows[k]["same_chunks_as"] for k in rows) else ""))
        gap = rows[best]["effective"] - rows[runner]["effective"]
        trigger += (f"), or switch to {runner} when a re-run (new documents, embedder or adapter) puts its effective quality "
                    f"above the pick's (today {rows[runner]['effective']:.4f} vs {rows[best]['effective']:.4f}, a gap of {gap:.4f})")
    else:
        trigger += ")"
    return {"pick": best, "runner_up": runner, "why": why, "longest_document_tokens": longest, "reversal_trigger": trigger}


# ------------------------------------------------------------------------------------------- main
def run(neighbours: int = 3, distractors: int = 150, full: bool = False, seed: int = 0, build_dir: Path = common.DEFAULT_BUILD_DIR,
        triton_dir: Path = TRITON, embed: EmbedFn | None = None, reuse_index: bool = True, twin_sample: int = 32,
        max_queries: int | None = None) -> dict[str, Any]:
    from tokenizers import Tokenizer

    started = time.perf_counter()
    data = build_dir / "data"
    docs = common.read_jsonl(data / "documents.jsonl")
    catalog = common.read_jsonl(data / "catalog.jsonl")
    queries = golden_queries(common.read_jsonl(build_dir / "golden" / "golden.jsonl"), {i["asin"] for i in catalog})
    if max_queries is not None:
        queries = queries[:max_queries]
    subset = docs if full else corpus(docs, catalog, queries, neighbours, distractors, seed)
    tokenizer = Tokenizer.from_file(str(triton_dir / "embed_tokenizer" / "1" / "tokenizer.json"))
    embed = embed or served_embedder(triton_dir)
    known = built_vectors(build_dir / "index") if reuse_index else {}
    twin = None
    if known and twin_sample:  # the in-process twin against the vectors the build got from Triton
        texts = [d["text"] for d in subset if _key(d["text"]) in known][:twin_sample]
        if texts:
            cos = np.sum(embed(texts) * np.stack([known[_key(t)] for t in texts]), axis=1)
            twin = {"sample": len(texts), "min_cosine": round(float(cos.min()), 5)}
    cache = VectorCache(embed, known)
    query_vectors = embed([retrieval_query(q["message"]) for q in queries])
    rows = evaluate(subset, queries, tokenizer, cache, query_vectors)
    plain = Tokenizer.from_str(tokenizer.to_str())
    plain.no_truncation()
    plain.no_padding()
    doc_tokens: dict[str, int] = defaultdict(int)
    for d in subset:
        doc_tokens[d["source_type"]] = max(doc_tokens[d["source_type"]], len(plain.encode(d["text"], add_special_tokens=False).ids))
    return {
        "metric": "mean Recall@3 x mean Precision@3 (first stage: embedder -> adapter -> FAISS inner product, no reranker)",
        "queries": len(queries), "queries_by_kind": {k: sum(_kind(q) == k for q in queries) for k in ("product", "policy")},
        "documents": len(subset), "documents_total": len(docs), "full_corpus": full,
        "corpus": {"neighbours": neighbours, "distractors": distractors, "seed": seed},
        "longest_document_tokens": dict(doc_tokens), "options": rows, "recommendation": recommend(rows, doc_tokens),
        "twin_vs_built_index": twin, "embedded_here": cache.embedded, "embed_seconds": round(cache.seconds, 1),
        "seconds": round(time.perf_counter() - started, 1), "device": common.device_info().get("cpu", ""),
    }


def markdown(result: Mapping[str, Any], command: str) -> str:
    rec = result["recommendation"]
    lines = [f"# Chunk size: effective retrieval quality (Recall@3 x Precision@3) — `{command}`", "",
             f"{result['queries']} golden retrieval queries ({result['queries_by_kind']['product']} product, "
             f"{result['queries_by_kind']['policy']} policy) over {result['documents']} of {result['documents_total']} real documents; "
             f"served embedder + adapter (ONNX in-process); {result['embedded_here']} chunks embedded here in {result['embed_seconds']} s, "
             f"the rest from the built index" + (f" (in-process twin vs built vectors: min cosine {result['twin_vs_built_index']['min_cosine']} "
                                                  f"on {result['twin_vs_built_index']['sample']})" if result.get("twin_vs_built_index") else "") + ".", "",
             "| chunk size | chunks | Recall@3 | Precision@3 | **R@3 x P@3** | minus variable's (95% CI, paired bootstrap) | product R@3 / P@3 | policy R@3 / P@3 | same chunks as |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in result["options"].items():
        kinds = r["by_kind"]
        cell = lambda k: f"{kinds[k]['recall@3']:.3f} / {kinds[k]['precision@3']:.3f}" if k in kinds else "-"  # noqa: E731
        size = name if name != "variable" else "variable (" + ", ".join(f"{t} {s}" for t, s in r["sizes"].items()) + ")"
        ci = r.get("vs_variable_ci95")
        diff = f"{r['effective'] - result['options']['variable']['effective']:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "-"
        lines.append(f"| {size} | {r['chunks']} | {r['recall@3']:.3f} | {r['precision@3']:.3f} | **{r['effective']:.4f}** | {diff} | "
                     f"{cell('product')} | {cell('policy')} | {r['same_chunks_as']} |")
    lines += ["", f"Longest document per source type (tokens): " + ", ".join(f"{k} {v}" for k, v in result["longest_document_tokens"].items()) + ".",
              "", f"**Pick: {rec['pick']}** ({rec.get('why', '')}). Reversal trigger: {rec['reversal_trigger']}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chunk_sizes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--neighbours", type=int, default=3, help="same-series items per golden ASIN (hard negatives)")
    parser.add_argument("--distractors", type=int, default=150, help="random other catalog items")
    parser.add_argument("--full", action="store_true", help="every document (slow on CPU: ~7,400 new embeddings)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    result = run(args.neighbours, args.distractors, args.full, args.seed)
    command = "python -m benchmarks.chunk_sizes" + ("".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])))
    out = Path(args.out)
    common.write_json(out / "chunk_sizes.json", {**result, "command": command})
    text = markdown(result, command)
    (out / "chunk_sizes.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
