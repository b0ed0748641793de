"""Can the hallucination scorer be alerted (or blocked) on? Issue 22.6, measured offline.

    nice -n 19 python -m benchmarks.hallucination.alerting [--build-dir .build] \\
        [--eval benchmarks/results/eval_openworld/eval.json --eval benchmarks/results/eval_fair/eval.json \\
         --eval benchmarks/results/eval_small_tier_fair/eval.json] [--out benchmarks/results/hallucination_alerting]

**The labelled set** (every label comes from the row-tied fact checker, :func:`model_repository.lifecycle.evaluation.facts.check_answer`,
with the golden record's expected entity; hand labels only where the checker cannot see a claim):

* ``template``   real template-tier answers of the ``--eval`` reports: label 0 when the checker passes them
  (grounded); a template answer the checker flags is left out (counted);
* ``small``      real small-tier answers: label 1 when the checker flags them or a hand label
  (``benchmarks/hallucination/labels.jsonl``, same answer text) says fabricated, label 0 when a hand label says
  grounded, otherwise unlabelled (left out, counted);
* ``mutant:<kind>`` the mutation corpus (:mod:`model_repository.lifecycle.evaluation.mutations`, one fact changed): label 1 when the
  checker confirms the changed fact is false; a mutant it passes is left out (counted);
* ``reference`` / ``reformatted`` the unmutated golden references, and the references with prices and dates
  written in other forms: label 0 (the checker passes all of them; one it flagged would be left out).

**The split**: a golden record -- its real answers, its reference and every mutant of it -- is held out when
``sha256("hallucination-alerting:" + id)`` falls in the first :data:`HELDOUT_SHARE` of the hash space, else it is
development. The held-out ids are frozen: :data:`HELDOUT_SHA256` is the sha256 of their sorted, newline-joined list
(``tests/unit/test_hallucination_alerting.py`` fails when it changes). Thresholds may be chosen on ``dev`` only.

**Scoring, as the service does it**: the service's :class:`~server.hallucination.scorer.HallucinationScorer` (claims,
evidence hints, min over sources, max over claims) on the ``ScoringJob`` the pipeline submits -- the retrieved
chunks in :func:`server.stages.entities.grounded_context` order and the facts stage's products plus the answer's
card products -- with the *served* files in-process: the ``hallucination_tokenizer`` tokenizer (pair mode,
max_length 128) and ``hallucination_scorer_onnx``'s ``model.onnx`` under ONNX Runtime, one intra-op thread.
Retrieval is the service's embed -> adapter -> FAISS top ``rerank_top_n`` cut to ``top_k`` *without* the
reranker (the service's ``rerank_skipped`` path; on 2 CPU cores the budget gate usually skips it anyway).
Synthetic answers (references, mutants) get the products the reference names as their cards (what the
template's cards would be). Template answers are scored although the service skips them (``skip_tiers``):
they are the grounded real answers the target's "<= 5% flagged" is about.

**Decisions compared on the held-out split**: the served scorer at the alert (0.5) and block (0.7) thresholds;
the threshold a development-split calibration picks; the model-free lexical scorer; and -- reported, not
recommended as evidence, because the labels come from the same checker -- "checker flags OR score >= t".
Target (issue 22.6): recall >= 80% at precision >= 80% at the block threshold and <= 5% of grounded template
answers flagged; missing it keeps the scorer alert-only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from benchmarks.common import DEFAULT_BUILD_DIR, DEFAULT_RESULTS_DIR, ROOT, device_info, write_json

ALERT, BLOCK = 0.5, 0.7
THRESHOLDS = (ALERT, BLOCK)
TARGET = {"precision": 0.80, "recall": 0.80, "template_flagged": 0.05}
HELDOUT_SHARE = 0.30
SPLIT_SALT = "hallucination-alerting:"
#: sha256 of the sorted, newline-joined held-out record ids of the golden set (seed 1234, 552 records)
HELDOUT_SHA256 = "103ad30ea12de274cf12bd9ba689d762438fe98b96a6af462a470f502501c433"
DEFAULT_EVALS = (
    "benchmarks/results/eval_openworld/eval.json",
    "benchmarks/results/eval_fair/eval.json",
    "benchmarks/results/eval_small_tier_fair/eval.json",
)
CURVE_STEPS = tuple(round(x, 2) for x in np.arange(0.05, 1.0, 0.05))


# ----------------------------------------------------------------------------------------------- the split
def is_heldout(record_id: str) -> bool:
    digest = hashlib.sha256(f"{SPLIT_SALT}{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < HELDOUT_SHARE


def heldout_ids(ids: Iterable[str]) -> list[str]:
    return sorted({str(i) for i in ids if is_heldout(str(i))})


def ids_sha256(ids: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


# ----------------------------------------------------------------------------------------------- labels
@dataclass(frozen=True)
class Card:
    asin: str
    title: str = ""
    price: float = 0.0
    in_stock: bool = False


@dataclass(frozen=True)
class Reply:
    answer: str
    cards: tuple[Card, ...] = ()


def cards_of(row: Mapping[str, Any]) -> tuple[Card, ...]:
    return tuple(Card(c["asin"], c.get("title", ""), float(c.get("price") or 0.0), bool(c.get("in_stock")))
                 for c in row.get("cards") or [] if c.get("asin"))


def violations(facts: Any, record: Mapping[str, Any], answer: str, cards: Sequence[Card] = ()) -> list[str]:
    """The row-tied checker's violation kinds for ``answer`` to ``record``'s message."""
    from model_repository.lifecycle.evaluation.facts import check_answer, expected_entity

    expected = expected_entity(facts, record.get("entity"), str(record.get("reference") or ""))
    found = check_answer(facts, str(record.get("message", "")), Reply(answer, tuple(cards)), expected).violations
    return sorted({v.kind for v in found})


def label_real(tier: str, found: Sequence[str], hand: Mapping[str, Any] | None, answer: str) -> tuple[int | None, str]:
    """(label, why) of a real answer; label None = left out."""
    if tier == "template":
        return (None, "template flagged by the checker: " + ", ".join(found)) if found else (0, "template, checker passes")
    if found:
        return 1, "checker: " + ", ".join(found)
    if hand is not None and hand.get("answer") == answer:
        return int(bool(hand["fabricated"])), "hand label" + (f": {hand['note']}" if hand.get("note") else "")
    return None, "checker passes, no hand label"


def label_synthetic(kind: str, found: Sequence[str]) -> tuple[int | None, str]:
    """(label, why) of a mutant (``kind`` a mutation kind) or a control (``reference`` / ``reformatted``)."""
    if kind in ("reference", "reformatted"):
        return (None, "control flagged by the checker") if found else (0, "control, checker passes")
    return (1, "checker: " + ", ".join(found)) if found else (None, "mutant the checker passes")


def build_samples(facts: Any, golden: Sequence[Mapping[str, Any]], evals: Sequence[Path], hand: Mapping[tuple[str, str], Any],
                  seed: int) -> tuple[list[dict[str, Any]], Counter]:
    """Every labelled answer (and a count of what was left out, by reason)."""
    from model_repository.lifecycle.evaluation import mutations

    by_id = {str(r["id"]): r for r in golden}
    samples: list[dict[str, Any]] = []
    left_out: Counter = Counter()
    seen: set[tuple[str, str, str]] = set()

    def add(record_id: str, group: str, answer: str, label: int | None, why: str, cards: Sequence[Card], origin: str,
            found: Sequence[str]) -> None:
        if label is None:
            left_out[f"{group.split(':')[0]}: {why.split(':')[0]}"] += 1
            return
        samples.append({"id": record_id, "group": group, "answer": answer, "label": label, "why": why,
                        "cards": [c.asin for c in cards], "origin": origin, "checker": list(found),
                        "split": "heldout" if is_heldout(record_id) else "dev"})

    for path in evals:
        for row in json.loads(Path(path).read_text(encoding="utf-8"))["records"]:
            rec = by_id.get(str(row["id"]))
            answer = row.get("answer") or ""
            if rec is None or row.get("error") or not answer.strip():
                left_out["real: no answer or not a golden record"] += 1
                continue
            key = (str(row["id"]), row["tier"], answer)
            if key in seen:
                continue  # the same answer in two reports
            seen.add(key)
            cards = cards_of(row)
            found = violations(facts, rec, answer, cards)
            label, why = label_real(row["tier"], found, hand.get((str(row["id"]), row["tier"])), answer)
            add(str(row["id"]), "template" if row["tier"] == "template" else "small", answer, label, why, cards, str(path), found)
    for m in [*mutations.mutate(facts, golden, seed), *mutations.controls(facts, golden, seed)]:
        found = violations(facts, by_id[m.record_id], m.answer)
        label, why = label_synthetic(m.kind, found)
        group = m.kind if m.kind in ("reference", "reformatted") else f"mutant:{m.kind}"
        add(m.record_id, group, m.answer, label, why, (), "mutations", found)
    return samples, left_out


# ----------------------------------------------------------------------------------------------- scoring
def served_score_fn(triton_dir: Path, *, batch_size: int = 32) -> Any:
    """(sources, claims) -> logits with the served tokenizer and ONNX file, in-process, one intra-op thread;
    pairs already scored are cached (references and their mutants share most claims)."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from model_repository import spec

    max_length = next(t.max_length for t in spec.TOKENIZERS if t.name == "hallucination_tokenizer")
    tok = Tokenizer.from_file(str(triton_dir / "hallucination_tokenizer" / "1" / "tokenizer.json"))
    tok.enable_truncation(max_length=max_length)
    tok.no_padding()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(triton_dir / "hallucination_scorer_onnx" / "1" / "model.onnx"), opts,
                                providers=["CPUExecutionProvider"])
    feeds = {i.name for i in sess.get_inputs()}
    cache: dict[tuple[str, str], float] = {}

    def run(pairs: list[tuple[str, str]]) -> None:
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i : i + batch_size]
            enc = tok.encode_batch(chunk)
            width = max(len(e.ids) for e in enc)
            arrays = {k: np.zeros((len(enc), width), dtype=np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            for row, e in enumerate(enc):
                arrays["input_ids"][row, : len(e.ids)] = e.ids
                arrays["attention_mask"][row, : len(e.ids)] = e.attention_mask
                arrays["token_type_ids"][row, : len(e.ids)] = e.type_ids
            out = sess.run(None, {k: v for k, v in arrays.items() if k in feeds})[0].reshape(-1)
            cache.update(zip(chunk, (float(x) for x in out)))

    async def score(sources: list[str], claims: list[str]) -> np.ndarray:
        pairs = list(zip(sources, claims))
        run(list(dict.fromkeys(p for p in pairs if p not in cache)))
        return np.array([cache[p] for p in pairs], dtype=np.float32)

    score.cache = cache  # type: ignore[attr-defined]
    return score


class Contexts:
    """The ScoringJob's sources and products for one golden record, built as the pipeline builds them."""

    def __init__(self, build_dir: Path, triton_dir: Path) -> None:
        from benchmarks.chunk_sizes import served_embedder
        from model_repository.lifecycle.evaluation.facts import StoreFacts
        from server.retrieval.entities import EntityResolver
        from server.retrieval.faiss_index import FaissIndex
        from server.retrieval.store import CatalogStore
        from server.settings import RetrievalSettings

        self.settings = RetrievalSettings()
        self.store = CatalogStore(str(build_dir / "index" / "catalog.sqlite"))
        self.resolver = EntityResolver(self.store)
        self.index = FaissIndex.load(build_dir / "index")
        self.embed = served_embedder(triton_dir, threads=1)
        self.facts = StoreFacts.load(build_dir / "data")
        self._cache: dict[str, tuple[list[Any], list[str], list[str]]] = {}

    def for_record(self, record: Mapping[str, Any]) -> tuple[list[Any], list[str], list[str]]:
        """(grounded context, the facts stage's product ASINs, the ASINs the reference names)."""
        from model_repository.lifecycle.evaluation.facts import named_products
        from server.ids import find_order_id
        from server.retrieval.query import expand
        from server.stages.entities import _facts, grounded_context

        rid = str(record["id"])
        if rid not in self._cache:
            message, intent = str(record["message"]), str(record.get("intent") or "")
            chunks: list[Any] = []
            if not intent or intent in self.settings.retrieval_intents:
                vec = self.embed([expand(message)])[0]
                chunks = self.index.search(vec, self.settings.rerank_top_n)[: self.settings.top_k]
            f = _facts(self.resolver, message, intent, find_order_id(message), chunks, self.settings.max_cards)
            ref_products = [a for *_, cands in named_products(self.facts, str(record.get("reference") or "")) for a in cands]
            self._cache[rid] = (grounded_context(chunks, f), [p.asin for p in f.products], list(dict.fromkeys(ref_products)))
        return self._cache[rid]

    def close(self) -> None:
        self.store.close()


async def score_samples(samples: list[dict[str, Any]], golden: Sequence[Mapping[str, Any]], build_dir: Path,
                        triton_dir: Path) -> dict[str, Any]:
    from server.hallucination.scorer import HallucinationScorer, lexical_score_fn

    by_id = {str(r["id"]): r for r in golden}
    ctx = Contexts(build_dir, triton_dir)
    model_fn = served_score_fn(triton_dir)
    model = HallucinationScorer(model_fn, catalog=ctx.store)
    lexical = HallucinationScorer(lexical_score_fn(), catalog=ctx.store)
    started = time.perf_counter()
    try:
        for i, s in enumerate(samples):
            sources, in_play, named = ctx.for_record(by_id[s["id"]])
            cards = s["cards"] if s["group"] in ("template", "small") else named  # the answer's cards
            products = list(dict.fromkeys([*in_play, *cards]))
            r = await model.score(s["answer"], sources=sources, products=products)
            lx = await lexical.score(s["answer"], sources=sources, products=products)
            s.update(score=round(r.score, 4), lexical=round(lx.score, 4), claims=len(r.claims), unverifiable=r.unverifiable,
                     worst_claim=r.worst.claim if r.worst else None)
            if (i + 1) % 200 == 0:
                print(f"scored {i + 1}/{len(samples)} ({time.perf_counter() - started:.0f} s, "
                      f"{len(model_fn.cache)} pairs)", file=sys.stderr)
    finally:
        ctx.close()
    return {"seconds": round(time.perf_counter() - started, 1), "pairs_scored": len(model_fn.cache)}


# ----------------------------------------------------------------------------------------------- figures
def confusion(items: Sequence[tuple[int, float]], threshold: float) -> dict[str, Any]:
    tp = sum(1 for y, s in items if y and s >= threshold)
    fp = sum(1 for y, s in items if not y and s >= threshold)
    fn = sum(1 for y, s in items if y and s < threshold)
    tn = len(items) - tp - fp - fn
    return {"threshold": threshold, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / (tp + fn), 4) if tp + fn else None,
            "flagged_grounded": round(fp / (fp + tn), 4) if fp + tn else None}


def figures(rows: Sequence[Mapping[str, Any]], key: str, threshold: float) -> dict[str, Any]:
    """Precision / recall at ``threshold`` over ``rows`` (``key``: the score field), with the share of grounded
    template answers flagged and per-group recall / flag rate."""
    items = [(r["label"], float(r[key])) for r in rows]
    out = confusion(items, threshold)
    tmpl = [float(r[key]) for r in rows if r["group"] == "template" and r["label"] == 0]
    out["template_flagged"] = round(sum(s >= threshold for s in tmpl) / len(tmpl), 4) if tmpl else None
    out["template_n"] = len(tmpl)
    groups: dict[str, Any] = {}
    for g in sorted({r["group"] for r in rows}):
        part = [r for r in rows if r["group"] == g]
        hit = sum(float(r[key]) >= threshold for r in part)
        groups[g] = {"n": len(part), "label": part[0]["label"] if len({r["label"] for r in part}) == 1 else "mixed",
                     "flagged": hit, "rate": round(hit / len(part), 4)}
    out["groups"] = groups
    out["meets_target"] = bool(out["precision"] is not None and out["recall"] is not None
                               and out["precision"] >= TARGET["precision"] and out["recall"] >= TARGET["recall"]
                               and (out["template_flagged"] or 0.0) <= TARGET["template_flagged"])
    return out


def curve(rows: Sequence[Mapping[str, Any]], key: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in figures(rows, key, t).items() if k != "groups"} for t in CURVE_STEPS]


def calibrate(rows: Sequence[Mapping[str, Any]], key: str) -> dict[str, Any]:
    """The development split's pick: among thresholds that keep precision >= 80% and template answers flagged
    <= 5%, the one with the highest recall; if none keeps both, the one with the best F1 (said so)."""
    grid = sorted({round(float(r[key]), 4) for r in rows} | set(CURVE_STEPS))
    best, fallback = None, None
    for t in grid:
        f = figures(rows, key, t)
        p, r = f["precision"] or 0.0, f["recall"] or 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if p >= TARGET["precision"] and (f["template_flagged"] or 0.0) <= TARGET["template_flagged"]:
            if best is None or r > best[1]:
                best = (t, r)
        if fallback is None or f1 > fallback[1]:
            fallback = (t, f1)
    if best is not None:
        return {"threshold": best[0], "rule": "max recall with precision >= 0.8 and template flagged <= 5% (dev)"}
    return {"threshold": fallback[0], "rule": "no dev threshold keeps precision >= 0.8 and template flagged <= 5%; best F1 (dev)"}


def auc(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    pos = np.array([float(r[key]) for r in rows if r["label"]])
    neg = np.array([float(r[key]) for r in rows if not r["label"]])
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return round(float(greater + 0.5 * ties), 4)


def report(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    dev = [s for s in samples if s["split"] == "dev"]
    held = [s for s in samples if s["split"] == "heldout"]
    for s in samples:  # "checker flags OR model score >= t": 1.0 when the checker flags it (circular: labels are the checker's)
        s["checker_or_score"] = 1.0 if s["checker"] else s["score"]
    out: dict[str, Any] = {"counts": {}, "decisions": {}}
    for name, part in (("dev", dev), ("heldout", held)):
        out["counts"][name] = {"answers": len(part), "fabricated": sum(s["label"] for s in part),
                               "groups": dict(sorted(Counter(s["group"] for s in part).items()))}
    for key in ("score", "lexical", "checker_or_score"):
        cal = calibrate(dev, key)
        out["decisions"][key] = {
            "auc": {"dev": auc(dev, key), "heldout": auc(held, key)},
            "heldout": {str(t): figures(held, key, t) for t in THRESHOLDS},
            "calibrated": {**cal, "dev": figures(dev, key, cal["threshold"]), "heldout": figures(held, key, cal["threshold"])},
            "curve_heldout": curve(held, key),
        }
    out["block_meets_target"] = out["decisions"]["score"]["heldout"][str(BLOCK)]["meets_target"]
    out["calibrated_meets_target"] = out["decisions"]["score"]["calibrated"]["heldout"]["meets_target"]
    return out


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def markdown(rep: Mapping[str, Any], left_out: Mapping[str, int], meta: Mapping[str, Any]) -> str:
    names = {"score": "served scorer", "lexical": "lexical scorer (model-free)",
             "checker_or_score": "checker OR served scorer (circular: labels are the checker's)"}
    c = rep["counts"]
    lines = [
        "# Hallucination scorer: can it be alerted / blocked on? (issue 22.6)", "",
        f"Held-out: {c['heldout']['answers']} answers ({c['heldout']['fabricated']} fabricated) of "
        f"{meta['heldout_records']} golden records (ids sha256 `{meta['heldout_sha256'][:16]}...`); development: "
        f"{c['dev']['answers']} ({c['dev']['fabricated']} fabricated). Left out: "
        + ", ".join(f"{k} {v}" for k, v in sorted(left_out.items())) + ".", "",
        f"Target on held-out: recall >= 80% at precision >= 80% at the block threshold ({BLOCK}), grounded template "
        "answers flagged <= 5%.", "",
        "| decision | threshold | precision | recall | template flagged | tp / fp / fn / tn | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, d in rep["decisions"].items():
        rows = [(str(t), d["heldout"][str(t)]) for t in THRESHOLDS]
        rows.append((f"{d['calibrated']['threshold']} (dev-calibrated)", d["calibrated"]["heldout"]))
        for t, f in rows:
            lines.append(f"| {names[key]} | {t} | {_pct(f['precision'])} | {_pct(f['recall'])} | "
                         f"{_pct(f['template_flagged'])} of {f['template_n']} | {f['tp']} / {f['fp']} / {f['fn']} / {f['tn']} | "
                         f"{'met' if f['meets_target'] else 'missed'} |")
    lines += ["", "ROC-AUC (dev / held-out): " + "; ".join(
        f"{names[k].split(' (')[0]} {d['auc']['dev']} / {d['auc']['heldout']}" for k, d in rep["decisions"].items()), ""]
    lines += ["## Served scorer by group (held-out, share flagged)", "",
              "| group | label | n | flagged at 0.5 | flagged at 0.7 |", "|---|---|---|---|---|"]
    a, b = (rep["decisions"]["score"]["heldout"][str(t)]["groups"] for t in THRESHOLDS)
    for g in a:
        lines.append(f"| {g} | {a[g]['label']} | {a[g]['n']} | {_pct(a[g]['rate'])} | {_pct(b[g]['rate'])} |")
    lines += ["", "## Precision / recall curve of the served scorer (held-out)", "",
              "| threshold | precision | recall | template flagged |", "|---|---|---|---|"]
    for p in rep["decisions"]["score"]["curve_heldout"]:
        lines.append(f"| {p['threshold']} | {_pct(p['precision'])} | {_pct(p['recall'])} | {_pct(p['template_flagged'])} |")
    block = rep["decisions"]["score"]["heldout"][str(BLOCK)]
    lines += ["", "**Decision**: " + (
        "the served scorer meets the target at the block threshold; blocking may be enabled."
        if rep["block_meets_target"] else
        f"the served scorer misses the target at the block threshold (precision {_pct(block['precision'])}, recall "
        f"{_pct(block['recall'])}, {_pct(block['template_flagged'])} of grounded template answers flagged) and no "
        "development-calibrated threshold meets it: alert-only (``guardrails.hallucination_block`` unset).")]
    lines += ["", f"Scoring: {meta['scoring']['seconds']} s, {meta['scoring']['pairs_scored']} distinct (source, claim) "
              "pairs, ONNX Runtime 1 intra-op thread, served files under " + meta["triton_dir"] + "."]
    return "\n".join(lines) + "\n"


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.hallucination.alerting", description=__doc__.split("\n")[0])
    p.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR)
    p.add_argument("--triton-dir", type=Path, default=None, help="the built cpu repository (default BUILD/triton/cpu)")
    p.add_argument("--golden", type=Path, default=None, help="default BUILD/golden/golden.jsonl")
    p.add_argument("--eval", action="append", type=Path, default=None, help="an eval.json (repeatable)")
    p.add_argument("--labels", type=Path, default=Path(__file__).with_name("labels.jsonl"))
    p.add_argument("--seed", type=int, default=None, help="mutation seed (default the corpus's)")
    p.add_argument("--out", type=Path, default=DEFAULT_RESULTS_DIR / "hallucination_alerting")
    args = p.parse_args(argv)
    from model_repository.lifecycle.evaluation import mutations
    from model_repository.lifecycle.evaluation.facts import StoreFacts

    triton_dir = args.triton_dir or args.build_dir / "triton" / "cpu"
    golden = load_jsonl(args.golden or args.build_dir / "golden" / "golden.jsonl")
    held_ids = heldout_ids(r["id"] for r in golden)
    digest = ids_sha256(held_ids)
    if digest != HELDOUT_SHA256:
        print(f"warning: held-out ids sha256 {digest} != frozen {HELDOUT_SHA256} (a different golden set?)", file=sys.stderr)
    hand = {(h["id"], h["tier"]): h for h in load_jsonl(args.labels)} if args.labels.exists() else {}
    evals = args.eval or [ROOT / e for e in DEFAULT_EVALS]
    facts = StoreFacts.load(args.build_dir / "data")
    samples, left_out = build_samples(facts, golden, evals, hand, args.seed if args.seed is not None else mutations.DEFAULT_SEED)
    print(f"{len(samples)} labelled answers; left out: {dict(left_out)}", file=sys.stderr)
    scoring = asyncio.run(score_samples(samples, golden, args.build_dir, triton_dir))
    rep = report(samples)
    meta = {"heldout_records": len(held_ids), "heldout_sha256": digest, "frozen_sha256": HELDOUT_SHA256,
            "scoring": scoring, "triton_dir": str(triton_dir.relative_to(ROOT) if triton_dir.is_relative_to(ROOT) else triton_dir),
            "evals": [str(e.relative_to(ROOT) if e.is_relative_to(ROOT) else e) for e in evals]}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "alerting.json", {"device": device_info(), "meta": meta, "left_out": dict(left_out),
                                            "report": rep, "heldout_ids": held_ids, "answers": samples})
    text = markdown(rep, left_out, meta)
    (args.out / "alerting.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
