"""The small tier's generator, in-process, on golden-set prompts: baseline vs candidates, interleaved.

    python -m benchmarks.llm.generate --per-intent 3 \\
        --variant int8=/work/llm_scratch/int8          # a directory with model.onnx + tokenizer.json + llm_meta.json

What is measured is exactly what Triton serves: :class:`OnnxGenerator` from
``model_repository/backends/llm_model.py`` (ORT + IOBinding KV cache + the prompt-prefix KV cache), 2 intra-op
threads, no spinning. Prompts are the tier's own (:func:`server.llm.prompts.build_prompt`, the system +
few-shot prefix + context + message, context trimmed to ``LocalTier``'s 3,400 characters) for golden-set
messages; the context is built from the golden record's entity (its product, its series' volumes, its
genre's products, its policy sections, its order row) -- an oracle stand-in for retrieval, so every
variant sees the same prompt. Every generator's shared prefix is warmed first (the service does that at
start-up), so "prefill" is the request-specific tail, as served.

Each prompt runs on every variant back to back, the order rotating per prompt, so load from other
processes on this shared 2-core machine hits all variants alike; compare the ratios, not absolute times.
Decoding is greedy (the service samples at temperature 0.1-0.5; greedy makes outputs comparable), up to
the intent's ``routing.max_tokens``.

Per generation: prefill ms (to the first token), per-token decode ms, tokens/s, end-to-end ms, finish
reason, whether the answer-format normaliser keeps any text (what the tier would answer) and which of the
golden record's must-state facts it states. The cheaper settings are derived from the baseline's own
token timings (greedy output is identical up to the cut, so no rerun is needed): stopping at the answer's
end event, and a lower ``max_tokens`` per intent. A candidate's quality is its agreement with the baseline:
identical generated text, same kept/not-kept, same facts stated.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from benchmarks.common import (
    DEFAULT_BUILD_DIR,
    DEFAULT_RESULTS_DIR,
    device_info,
    fmt,
    latency_summary,
    markdown_table,
    percentile,
    read_jsonl,
    write_json,
)

INTENTS = ("product_question", "recommendation", "order_status", "return_refund", "policy_faq", "price_deal",
           "chitchat", "escalation")
MAX_PROMPT_CHARS = 3400  # server/llm/local.py LocalTier.max_prompt_chars


# ------------------------------------------------------------------------------------------- prompts
def pick_records(records: Sequence[dict], per_intent: int) -> list[dict]:
    """``per_intent`` golden records of each intent, spread evenly over the file (deterministic)."""
    out = []
    for intent in INTENTS:
        rows = [r for r in records if r["intent"] == intent]
        if not rows:
            continue
        step = max(1, len(rows) // per_intent)
        out.extend(rows[::step][:per_intent])
    return out


class ContextBuilder:
    """Chunks for a golden record from its entity: product, series volumes, genre picks, policy, order."""

    def __init__(self, build_dir: Path) -> None:
        from server.retrieval.base import Chunk

        self._Chunk = Chunk
        self.catalog = {r["asin"]: r for r in read_jsonl(build_dir / "data" / "catalog.jsonl")}
        self.orders = {r["order_id"]: r for r in read_jsonl(build_dir / "data" / "orders.jsonl")}
        self.product_chunk: dict[str, Any] = {}
        self.policy_chunks: dict[str, list[Any]] = {}
        for r in read_jsonl(build_dir / "index" / "chunks.jsonl"):
            chunk = Chunk(r["chunk_id"], r["doc_id"], r["source_type"], r["text"], r.get("asin"))
            if r["source_type"] == "product" and r.get("asin") and r["asin"] not in self.product_chunk:
                self.product_chunk[r["asin"]] = chunk
            elif r["source_type"] == "policy":
                self.policy_chunks.setdefault(r["doc_id"].split(":", 1)[1], []).append(chunk)

    def price_of(self, asin: str) -> float | None:
        row = self.catalog.get(asin)
        return float(row["price"]) if row else None

    def chunks(self, record: dict) -> list[Any]:
        from server.retrieval.base import ScoredChunk

        ent = record.get("entity") or {}
        out: list[Any] = []
        if ent.get("policy_id"):
            out += self.policy_chunks.get(ent["policy_id"], [])
        if ent.get("order_id") and ent["order_id"] in self.orders:
            o = self.orders[ent["order_id"]]
            text = (f"Order {o['order_id']}: status {o['status']}, carrier {o.get('carrier')}, tracking "
                    f"{o.get('tracking_number')}, placed {o.get('placed_at')}, eta {o.get('eta')}, "
                    f"items {', '.join(o.get('items', []))}.")
            out.append(self._Chunk(f"order:{o['order_id']}", f"order:{o['order_id']}", "order", text))
        asins: list[str] = []
        if ent.get("asin"):
            asins.append(ent["asin"])
        if ent.get("series"):
            vols = sorted((r for r in self.catalog.values() if r["series"] == ent["series"]),
                          key=lambda r: (r.get("volume") or 0, r["asin"]))
            asins += [r["asin"] for r in vols[:3]]
        if ent.get("genre"):
            picks = sorted((r for r in self.catalog.values() if ent["genre"] in r.get("genres", [])
                            and r.get("volume") == 1), key=lambda r: r["asin"])
            asins += [r["asin"] for r in picks[:3]]
        for asin in dict.fromkeys(asins):
            if asin in self.product_chunk:
                out.append(self.product_chunk[asin])
        return [ScoredChunk(c, 1.0 - 0.01 * i) for i, c in enumerate(out)]


def tier_payload(record: dict, context: list[Any], price_of: Callable[[str], float | None]) -> str:
    """The PROMPT the tier sends for this record (context dropped from the end until it fits)."""
    from server.llm.prompts import build_prompt

    context = list(context)
    while True:
        prompt = build_prompt(record["intent"], record["message"], context, price_of=price_of)
        size = len(prompt.system) + len(prompt.final_user) + sum(len(a) + len(b) for a, b in prompt.few_shot)
        if size <= MAX_PROMPT_CHARS or not context:
            return json.dumps({"messages": prompt.to_chat()}, ensure_ascii=False)
        context.pop()


# ------------------------------------------------------------------------------------------- one run
@dataclass
class Trace:
    """One generation: token ids and the perf_counter offset (s) at which each was produced."""

    ids: list[int]
    times: list[float]
    finish: str
    total_s: float


def run_generation(gen: Any, prompt_ids: list[int], max_new_tokens: int) -> Trace:
    ids: list[int] = []
    times: list[float] = []
    finish = ""
    start = time.perf_counter()
    for token, reason in gen.generate(prompt_ids, max_new_tokens):
        if reason is not None:
            finish = reason
            break
        ids.append(token)
        times.append(time.perf_counter() - start)
    return Trace(ids, times, finish, time.perf_counter() - start)


def timing_of(trace: Trace, n_tokens: int | None = None) -> dict[str, float]:
    """prefill ms (first token), mean decode ms per later token, tokens/s and end-to-end ms of the first
    ``n_tokens`` tokens (all when None; a cut trace ends at its last kept token)."""
    n = len(trace.ids) if n_tokens is None else min(n_tokens, len(trace.ids))
    if n == 0:
        return {"tokens": 0, "prefill_ms": trace.total_s * 1000, "decode_ms_per_token": float("nan"),
                "tokens_per_s": 0.0, "e2e_ms": trace.total_s * 1000}
    prefill = trace.times[0]
    end = trace.total_s if n == len(trace.ids) else trace.times[n - 1]
    decode = (trace.times[n - 1] - prefill) / (n - 1) if n > 1 else float("nan")
    return {"tokens": n, "prefill_ms": prefill * 1000, "decode_ms_per_token": decode * 1000,
            "tokens_per_s": n / end if end > 0 else 0.0, "e2e_ms": end * 1000}


_END_LINE = re.compile(r'^\s*\{\s*"type"\s*:\s*"end"\s*\}\s*,?\s*$')


def end_event_token(decode: Callable[[list[int]], str], ids: Sequence[int]) -> int | None:
    """How many tokens it took the model to write the answer format's end line (None: it never did)."""
    from model_repository.backends.llm_model import answer_ended

    for n in range(1, len(ids) + 1):
        if answer_ended(decode(ids[:n])):
            return n
    return None


def answer_of(text: str, finish: str) -> tuple[str, list[str]]:
    """What the tier would answer from this raw output: (parsed text, degraded flags)."""
    from server.llm import answer_format
    from server.llm.local import AnswerNormalizer

    norm = AnswerNormalizer()
    ndjson = norm.feed(text) + norm.close(truncated=finish == "length")
    parsed = answer_format.parse(ndjson)
    flags = []
    if norm.repaired:
        flags.append("answer_format_repaired")
    if finish == "length":
        flags.append("answer_truncated")
    if not parsed.text.strip():
        flags.append("answer_empty")
    return parsed.text, flags


def facts_stated(record: dict, text: str) -> tuple[int, int]:
    """(must-state groups stated, groups): a group is stated when any of its phrasings is in the text."""
    low = text.lower()
    groups = record.get("must_state") or []
    return sum(any(p.lower() in low for p in g) for g in groups), len(groups)


# ------------------------------------------------------------------------------------------- variants
class GenaiGenerator:
    """onnxruntime-genai's own loop (``genai:DIR``, a model-builder output) behind OnnxGenerator's interface.

    No prompt-prefix cache: every request prefills its whole prompt. Needs onnxruntime-genai and the
    onnxruntime it was built for on the path (not the project's pinned onnxruntime; see benchmarks/results/llm/README.md).
    """

    def __init__(self, model_dir: Path, threads: int) -> None:
        import onnxruntime_genai as og
        from tokenizers import Tokenizer

        from model_repository.backends.llm_model import IM_END

        cfg = json.loads((model_dir / "genai_config.json").read_text())
        opts = cfg["model"]["decoder"].setdefault("session_options", {})
        if opts.get("intra_op_num_threads") != threads:
            opts["intra_op_num_threads"] = threads
            (model_dir / "genai_config.json").write_text(json.dumps(cfg, indent=4))
        self._og = og
        self.model = og.Model(str(model_dir))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.stop_ids = {self.tokenizer.token_to_id(t) for t in (IM_END, "<|endoftext|>")} - {None}

    def encode_prompt(self, prompt: str) -> list[int]:
        from model_repository.backends.llm_model import prompt_to_text

        return self.tokenizer.encode(prompt_to_text(prompt), add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def generate(self, ids: list[int], max_new_tokens: int):
        og = self._og
        params = og.GeneratorParams(self.model)
        params.set_search_options(max_length=len(ids) + max_new_tokens, do_sample=False)
        gen = og.Generator(self.model, params)
        gen.append_tokens(ids)
        produced = 0
        while not gen.is_done():
            gen.generate_next_token()
            token = int(gen.get_next_tokens()[0])
            if token in self.stop_ids:
                yield None, "stop"
                return
            produced += 1
            yield token, None
            if produced >= max_new_tokens:
                yield None, "length"
                return
        yield None, "length"


def load_generator(onnx_dir: Path | str, threads: int) -> Any:
    from model_repository.backends.llm_model import OnnxGenerator

    if str(onnx_dir).startswith("genai:"):
        return GenaiGenerator(Path(str(onnx_dir)[len("genai:"):]), threads)
    onnx_dir = Path(onnx_dir)
    return OnnxGenerator(str(onnx_dir / "model.onnx"), str(onnx_dir / "tokenizer.json"),
                         str(onnx_dir / "llm_meta.json"), threads=threads)


def parse_variants(items: Iterable[str]) -> dict[str, Path]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--variant wants NAME=DIR, got {item!r}")
        out[name] = path if path.startswith("genai:") else Path(path)
    return out


def summarise(rows: list[dict], key: str) -> dict[str, Any]:
    vals = [r[key] for r in rows if r.get(key) == r.get(key)]  # drop NaN
    return latency_summary(vals) if vals else {}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR)
    ap.add_argument("--baseline", type=Path, default=None, help="default: <build>/models/smollm2/onnx")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=DIR (model.onnx, tokenizer.json, llm_meta.json) or NAME=genai:DIR (onnxruntime-genai)")
    ap.add_argument("--per-intent", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens-scale", type=float, default=1.0, help="scale routing.max_tokens (quick runs)")
    ap.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR / "llm")
    ap.add_argument("--from-json", type=Path, default=None, help="re-analyse a previous run's generate.json")
    args = ap.parse_args(argv)
    if args.from_json is not None:
        return rewrite(args.from_json, args.out)

    from server.settings import RoutingSettings

    max_tokens = {k: max(1, int(v * args.max_tokens_scale)) for k, v in RoutingSettings().max_tokens.items()}
    variants: dict[str, Any] = {"fp32": args.baseline or args.build_dir / "models" / "smollm2" / "onnx"}
    variants.update(parse_variants(args.variant))
    gens = {}
    for name, path in variants.items():
        t0 = time.perf_counter()
        gens[name] = load_generator(path, args.threads)
        print(f"[llm-bench] loaded {name} from {path} in {time.perf_counter() - t0:.1f}s", flush=True)
    ctx = ContextBuilder(args.build_dir)
    records = pick_records(read_jsonl(args.build_dir / "golden" / "golden.jsonl"), args.per_intent)
    payloads = [tier_payload(r, ctx.chunks(r), ctx.price_of) for r in records]
    base = gens["fp32"]
    # Warm every generator's shared prompt prefix (LocalTier.warm_up does this at service start).
    for name, gen in gens.items():
        t0 = time.perf_counter()
        run_generation(gen, gen.encode_prompt(payloads[0]), 1)
        print(f"[llm-bench] {name}: prefix warm-up {1000 * (time.perf_counter() - t0):.0f} ms", flush=True)

    names = list(gens)
    rows: list[dict] = []
    for i, (record, payload) in enumerate(zip(records, payloads)):
        ids = base.encode_prompt(payload)
        cap = max_tokens[record["intent"]]
        order = names[i % len(names):] + names[: i % len(names)]
        for name in order:
            gen = gens[name]
            trace = run_generation(gen, ids, cap)
            text = gen.decode(trace.ids)
            answer, flags = answer_of(text, trace.finish)
            stated, groups = facts_stated(record, answer)
            row = {"id": record["id"], "intent": record["intent"], "variant": name, "prompt_tokens": len(ids),
                   "max_tokens": cap, "finish": trace.finish, "kept": "answer_empty" not in flags,
                   "flags": flags, "facts_stated": stated, "facts": groups, "text": text, "answer": answer,
                   "token_times_ms": [round(t * 1000, 1) for t in trace.times],
                   "end_event_token": end_event_token(gen.decode, trace.ids), "ids": trace.ids,
                   **{k: round(v, 2) for k, v in timing_of(trace).items()}}
            rows.append(row)
            print(f"[llm-bench] {i + 1}/{len(records)} {record['intent']:<16} {name:<6} {row['tokens']:>3} tok "
                  f"{row['e2e_ms']:>8.0f} ms prefill {row['prefill_ms']:>5.0f} decode "
                  f"{row['decode_ms_per_token']:>5.1f} ms/tok {trace.finish:<6} kept={row['kept']}", flush=True)
    report = analyse(rows, names, max_tokens, base.decode)
    report.update({"device": device_info(), "per_intent": args.per_intent, "threads": args.threads,
                   "variants": {k: str(v) for k, v in variants.items()}, "max_tokens": max_tokens,
                   "command": "python -m benchmarks.llm.generate " + " ".join(sys.argv[1:] if argv is None else argv)})
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "generate.json", {**report, "rows": rows})
    (args.out / "generate.md").write_text(render_markdown(report))
    print((args.out / "generate.md").read_text())
    return 0


def rewrite(path: Path, out: Path) -> int:
    """Re-run the analysis and the Markdown of a saved run (its rows are all in the JSON)."""
    saved = json.loads(path.read_text())
    rows = saved.pop("rows")
    names = list(dict.fromkeys(r["variant"] for r in rows))
    for key in ("variants_summary", "by_intent", "stop_at_end_event", "max_tokens_cap"):
        saved.pop(key, None)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(saved["variants"]["fp32"]) / "tokenizer.json"))
    report = {**analyse(rows, names, saved["max_tokens"], lambda ids: tok.decode(list(ids), skip_special_tokens=True)),
              **saved}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "generate.json", {**report, "rows": rows})
    (out / "generate.md").write_text(render_markdown(report))
    print((out / "generate.md").read_text())
    return 0


# ------------------------------------------------------------------------------------------- analysis
def stop_cut(row: dict) -> int:
    """Tokens the baseline would have produced had it stopped at the end event (greedy: same prefix)."""
    return row["end_event_token"] or row["tokens"]


CAPS = (48, 64, 96, 128)


def capped(rows: list[dict], cap: int, decode: Callable[[list[int]], str]) -> dict[str, Any]:
    """The baseline with ``max_tokens`` = min(cap, the intent's): each trace cut at ``cap`` tokens (greedy:
    the same tokens up to there), its answer re-parsed as a truncated one."""
    e2e, kept, same = [], 0, 0
    for r in rows:
        if r["tokens"] <= cap:
            e2e.append(r["e2e_ms"])
            now_kept = r["kept"]
        else:
            e2e.append(r["token_times_ms"][cap - 1])
            now_kept = "answer_empty" not in answer_of(decode(r["ids"][:cap]), "length")[1]
        kept += now_kept
        same += now_kept == r["kept"]
    return {"cap": cap, "kept": kept, "same_kept_vs_uncapped": same / len(rows), "e2e": latency_summary(e2e),
            "complete_answers_cut": sum(r["finish"] != "length" and r["tokens"] > cap for r in rows)}


def analyse(rows: list[dict], names: list[str], max_tokens: dict[str, int],
            decode: Callable[[list[int]], str] | None = None) -> dict[str, Any]:
    by = {n: [r for r in rows if r["variant"] == n] for n in names}
    base = {r["id"]: r for r in by["fp32"]}
    out: dict[str, Any] = {"variants_summary": {}, "by_intent": {}}
    for name, rs in by.items():
        pairs = [(r, base[r["id"]]) for r in rs]
        ratios = [b["e2e_ms"] / r["e2e_ms"] for r, b in pairs if r["e2e_ms"] > 0]
        dec_ratios = [b["decode_ms_per_token"] / r["decode_ms_per_token"] for r, b in pairs
                      if r["decode_ms_per_token"] == r["decode_ms_per_token"] and b["decode_ms_per_token"] == b["decode_ms_per_token"]]
        out["variants_summary"][name] = {
            "n": len(rs),
            "e2e": summarise(rs, "e2e_ms"),
            "prefill": summarise(rs, "prefill_ms"),
            "decode_ms_per_token": summarise(rs, "decode_ms_per_token"),
            "tokens_per_s_p50": round(percentile([r["tokens_per_s"] for r in rs], 50), 1),
            "speedup_e2e_p50_vs_fp32": round(percentile(ratios, 50), 2) if ratios else None,
            "speedup_decode_p50_vs_fp32": round(percentile(dec_ratios, 50), 2) if dec_ratios else None,
            "identical_text_vs_fp32": sum(r["ids"] == b["ids"] for r, b in pairs) / len(pairs),
            "same_kept_vs_fp32": sum(r["kept"] == b["kept"] for r, b in pairs) / len(pairs),
            "same_facts_vs_fp32": sum(r["facts_stated"] == b["facts_stated"] for r, b in pairs) / len(pairs),
            "kept": sum(r["kept"] for r in rs),
            "finish_length": sum(r["finish"] == "length" for r in rs),
            "facts_stated": f"{sum(r['facts_stated'] for r in rs)}/{sum(r['facts'] for r in rs)}",
        }
    # Cheaper settings on the baseline's own traces: stop at the end event; lower max_tokens per intent.
    brs = by["fp32"]
    stopped = []
    for r in brs:
        n = stop_cut(r)
        t = r["token_times_ms"]
        stopped.append(t[n - 1] if n and n < r["tokens"] else r["e2e_ms"])
    out["stop_at_end_event"] = {
        "wrote_end_event": sum(r["end_event_token"] is not None for r in brs),
        "ran_on_after_end": sum(r["end_event_token"] is not None and r["end_event_token"] < r["tokens"] for r in brs),
        "e2e": latency_summary(stopped),
        "tokens_saved": sum(r["tokens"] - stop_cut(r) for r in brs),
    }
    if decode is not None:
        out["max_tokens_cap"] = [capped(brs, cap, decode) for cap in CAPS]
    for intent in INTENTS:
        rs = [r for r in brs if r["intent"] == intent]
        if not rs:
            continue
        kept_len = [stop_cut(r) for r in rs if r["kept"] and r["finish"] != "length"]
        out["by_intent"][intent] = {
            "n": len(rs), "max_tokens": max_tokens[intent], "kept": sum(r["kept"] for r in rs),
            "finish_length": sum(r["finish"] == "length" for r in rs),
            "tokens_of_kept_complete_answers_max": max(kept_len) if kept_len else None,
            "e2e_p50_ms": round(percentile([r["e2e_ms"] for r in rs], 50)),
            "e2e_p99_ms": round(percentile([r["e2e_ms"] for r in rs], 99)),
            **{f"{n}_e2e_p99_ms": round(percentile([r["e2e_ms"] for r in by[n] if r["intent"] == intent], 99))
               for n in names if n != "fp32"},
        }
    return out


def render_markdown(report: dict) -> str:
    dev = report["device"]
    lines = [
        "# Local LLM tier: generator in-process on golden-set prompts",
        "",
        f"`{report['command']}` -- {report['per_intent']} golden messages per intent, greedy, up to the intent's "
        f"`routing.max_tokens`, {report['threads']} ORT threads; variants interleaved per prompt on a shared "
        f"{dev.get('cpu_count', '?')}-core machine ({dev.get('cpu_model', '')}; load at start "
        f"{dev.get('load_average_at_start')}). Compare ratios, not absolute times.",
        "",
    ]
    rows = []
    for name, s in report["variants_summary"].items():
        rows.append([name, s["n"], fmt(s["e2e"].get("p50_ms"), 0), fmt(s["e2e"].get("p99_ms"), 0),
                     fmt(s["prefill"].get("p50_ms"), 0), fmt(s["decode_ms_per_token"].get("p50_ms")),
                     fmt(s["tokens_per_s_p50"]), fmt(s["speedup_e2e_p50_vs_fp32"], 2),
                     fmt(s["speedup_decode_p50_vs_fp32"], 2), f"{100 * s['identical_text_vs_fp32']:.0f}%",
                     f"{100 * s['same_kept_vs_fp32']:.0f}%", f"{100 * s['same_facts_vs_fp32']:.0f}%",
                     f"{s['kept']}/{s['n']}", s["finish_length"], s["facts_stated"]])
    lines.append(markdown_table(
        ["variant", "n", "e2e p50 ms", "e2e p99 ms", "prefill p50 ms", "decode ms/tok p50", "tok/s p50",
         "e2e speed-up p50", "decode speed-up p50", "identical text", "same kept", "same facts", "kept",
         "ran to max_tokens", "facts stated"], rows))
    s = report["stop_at_end_event"]
    lines += ["", f"**Stop at the answer's end event** (baseline traces cut where the model wrote "
              f"`{{\"type\": \"end\"}}`; greedy output is identical up to there): {s['wrote_end_event']} "
              f"generations wrote it, {s['ran_on_after_end']} ran on after it, {s['tokens_saved']} tokens saved; "
              f"e2e p50 {fmt(s['e2e']['p50_ms'], 0)} ms, p99 {fmt(s['e2e']['p99_ms'], 0)} ms.", ""]
    if report.get("max_tokens_cap"):
        lines += ["**A lower `max_tokens`** (fp32 traces cut at the cap; greedy output is identical up to there; a "
                  "cut answer is re-parsed as truncated): what the tier keeps and how long it takes.", ""]
        lines.append(markdown_table(
            ["cap (tokens)", "kept", "same kept as uncapped", "complete answers cut", "e2e p50 ms", "e2e p99 ms"],
            [[c["cap"], f"{c['kept']}/{c['e2e']['n']}", f"{100 * c['same_kept_vs_uncapped']:.0f}%",
              c["complete_answers_cut"], fmt(c["e2e"]["p50_ms"], 0), fmt(c["e2e"]["p99_ms"], 0)]
             for c in report["max_tokens_cap"]]))
        lines.append("")
    rows = []
    for intent, p in report["by_intent"].items():
        rows.append([intent, p["n"], p["max_tokens"], p["kept"], p["finish_length"],
                     fmt(p["tokens_of_kept_complete_answers_max"]), p["e2e_p50_ms"], p["e2e_p99_ms"]]
                    + [p[k] for k in p if k.endswith("_e2e_p99_ms") and k != "e2e_p99_ms"])
    extra = [k.replace("_e2e_p99_ms", "") + " e2e p99 ms" for k in next(iter(report["by_intent"].values()))
             if k.endswith("_e2e_p99_ms") and k != "e2e_p99_ms"]
    lines.append(markdown_table(["intent (fp32)", "n", "max_tokens", "kept", "ran to max_tokens",
                                 "longest kept complete answer (tokens)", "e2e p50 ms", "e2e p99 ms", *extra], rows))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
