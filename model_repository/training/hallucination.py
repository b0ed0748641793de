"""Hallucination scorer: a MiniLM cross-encoder (source, claim) -> 1 logit, sigmoid = P(fabricated).

Training data is synthetic and built from the generated catalog and policies (:func:`make_claim_pairs`):
each pair is a source (a product's fact sheet, :func:`server.hallucination.facts.fact_text`, or a window of
a policy section) and a claim that is either a paraphrase of one of its facts (label 0, grounded) or the
same statement with one fact perturbed (label 1, fabricated): another series' author, a different volume
number, a plausible other price, a shifted release date, another format / language / publisher, flipped
availability, or a policy number changed (days, dollar thresholds, percentages). A few claims are paired
with an unrelated product's fact sheet (label 1: nothing supports them). The held-out test set uses
other claim templates, other series (so other products) and other policy sentences.

:func:`train_hallucination_scorer` fine-tunes like :func:`~model_repository.training.retrieval.train_reranker`
(BCE on one logit; the claim carries the evidence hint of :func:`server.hallucination.facts.model_input`,
applied identically by the serving scorer) and saves ``out_dir/hf``; :func:`build_step` is the whole cached build step for the
lead's :class:`~model_repository.build.Builder` (train -> ONNX variants -> evaluation -> served variant).
"""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from model_repository.training.common import fit_cross_encoder, read_jsonl, seed_everything
from server.hallucination.facts import FORMAT_NAMES, fact_text, model_input, sentences, windows

THRESHOLDS = (0.3, 0.5, 0.7)
PAIR_FIELDS = ("source", "claim", "label", "kind", "asin", "template")
ScorePairs = Callable[[list[tuple[str, str]]], np.ndarray]  # (source, claim) pairs -> logits

_LANGUAGES = ("English", "Japanese", "Spanish", "French", "German", "Italian", "Portuguese")
_PUBLISHER_FALLBACK = ("Kodama Press", "Sakura Leaf Comics", "Blue Lantern Media", "Tsukimi Books")


# ----------------------------------------------------------------------------- claim templates
# Each fact kind has TRAIN and TEST phrasings; ``{name}`` is "<series> vol. N" or the title.
_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "author": {
        "train": ("{name} is written by {author}.", "{author} is the author of {title}.", "{name} was written and drawn by {author}."),
        "test": ("The author behind {name} is {author}.", "{title} was created by manga artist {author}."),
    },
    "price": {
        "train": ("{name} costs ${price}.", "{title} is priced at ${price}.", "You can buy {name} for ${price} right now."),
        "test": ("{name} sells for {price} dollars.", "The price of {title} is ${price}."),
    },
    "volume": {
        "train": ("{title_novol} volume {volume} is written by {author}.", "Volume {volume} of {series} costs ${price}."),
        "test": ("{series} #{volume} sells for ${price}.",),
    },
    "format": {
        "train": ("It's a {format} edition.", "{title} comes as a {format}.", "{name} is available in {format} format."),
        "test": ("This one is the {format} release of {series}.", "You'd be getting the {format} version of {name}."),
    },
    "language": {
        "train": ("This edition of {series} is in {language}.", "{name} is the {language} edition."),
        "test": ("{title} is printed in {language}.",),
    },
    "release": {
        "train": ("{title} was released on {date_long}.", "{name} came out in {month_year}."),
        "test": ("{name} hit shelves on {date_iso}.", "The release date of {title} is {date_dmy}."),
    },
    "publisher": {
        "train": ("{title} is published by {publisher}.",),
        "test": ("{publisher} publishes {name}.",),
    },
    "stock": {
        "train": ("{title} is {stock_phrase}.",),
        "test": ("Right now {name} is {stock_phrase}.",),
    },
}
_POLICY_PREFIX = {"train": ("", "Per our policy: "), "test": ("According to the store policy, ", "Good news: ")}
_PRODUCT_KINDS = tuple(_TEMPLATES)
_COMMON_FIRST_WORDS = frozenset(
    "you we our orders order returns refunds all every each new standard expedited overnight international "
    "in-stock items books when if for exchanges points pre-orders members customers damaged gift monthly "
    "annual students the a an".split()
)


def _split_of(series: str, seed: int) -> str:
    """Series-level split (so no product is in both): ~20% of series are held out."""
    return "test" if random.Random(f"{seed}:split:{series}").random() < 0.2 else "train"


def _date_forms(iso: str) -> dict[str, str]:
    d = date.fromisoformat(iso)
    return {
        "date_iso": d.isoformat(),
        "date_long": f"{d:%B} {d.day}, {d.year}",
        "date_dmy": f"{d.day} {d:%B} {d.year}",
        "month_year": f"{d:%B} {d.year}",
    }


def _fields(p: dict[str, Any]) -> dict[str, Any]:
    vol = p.get("volume")
    title_novol = re.sub(r",?\s*Vol\.\s*\d+.*$", "", p["title"]).strip() or p["series"]
    f = {
        "title": p["title"],
        "title_novol": title_novol,
        "series": p["series"],
        "name": f"{p['series']} vol. {vol}" if vol is not None else p["title"],
        "volume": vol,
        "author": p["author"],
        "publisher": p["publisher"],
        "price": f"{p['price']:.2f}",
        "format": FORMAT_NAMES[p["format"]].split(" (")[0],
        "language": p["language"],
        "stock_phrase": _stock_phrase(p["format"], p["stock"]),
    }
    f.update(_date_forms(p["release_date"]))
    return f


def _stock_phrase(fmt: str, stock: int) -> str:
    if fmt == "digital":
        return "always available as a digital download"
    return "in stock" if stock > 0 else "out of stock right now"


def _perturb(kind: str, p: dict[str, Any], f: dict[str, Any], pools: dict[str, list[Any]], rng: random.Random) -> dict[str, Any] | None:
    """A copy of ``f`` with the fact of ``kind`` changed to a plausible wrong value (None if impossible)."""
    g = dict(f)
    if kind == "author":
        g["author"] = rng.choice([a for a in pools["authors"] if a != p["author"]])
    elif kind == "price":
        delta = rng.choice((-3.0, -2.0, -1.0, -0.5, 1.0, 2.0, 3.0, 5.0))
        new = round(p["price"] + delta, 2)
        if new <= 0.99:
            new = round(p["price"] + 2.0, 2)
        g["price"] = f"{new:.2f}"
    elif kind == "volume":
        if p.get("volume") is None:
            return None
        choices = [v for v in range(max(1, p["volume"] - 3), p["volume"] + 4) if v != p["volume"]]
        g["volume"] = rng.choice(choices)
        g["name"] = f"{p['series']} vol. {g['volume']}"
    elif kind == "format":
        g["format"] = FORMAT_NAMES[rng.choice([x for x in FORMAT_NAMES if x != p["format"]])].split(" (")[0]
    elif kind == "language":
        g["language"] = rng.choice([x for x in _LANGUAGES if x != p["language"]])
    elif kind == "release":
        d = date.fromisoformat(p["release_date"])
        shift = rng.choice((rng.randint(20, 200), -rng.randint(20, 200), 365, -365, 730))
        g.update(_date_forms((d + timedelta(days=shift)).isoformat()))
    elif kind == "publisher":
        g["publisher"] = rng.choice([x for x in pools["publishers"] if x != p["publisher"]])
    elif kind == "stock":
        if p["format"] == "digital":
            g["stock_phrase"] = "out of stock right now"
        else:
            g["stock_phrase"] = "out of stock right now" if p["stock"] > 0 else "in stock"
    return g


def _product_pairs(products: list[dict[str, Any]], n: int, split: str, pools: dict[str, list[Any]], rng: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while len(out) < n:
        p = rng.choice(products)
        f = _fields(p)
        kind = rng.choice(_PRODUCT_KINDS)
        template = rng.choice(_TEMPLATES[kind][split])
        if "{volume}" in template and p.get("volume") is None:
            continue
        source = fact_text(p)
        r = rng.random()
        if r < 0.45:
            claim, label, how = template.format(**f), 0, "true"
        elif r < 0.92 or kind == "volume":
            g = _perturb(kind, p, f, pools, rng)
            if g is None:
                continue
            claim, label, how = template.format(**g), 1, f"wrong_{kind}"
        else:  # a claim about this product checked against another series' fact sheet: unsupported
            if "{series}" not in template and "{name}" not in template and "{title}" not in template:
                continue
            other = rng.choice([q for q in products if q["series"] != p["series"]])
            claim, label, how, source = template.format(**f), 1, "unsupported", fact_text(other)
        out.append({"source": source, "claim": claim, "label": label, "kind": how, "asin": p["asin"], "template": f"{kind}:{template}"})
    return out


_POLICY_NUMBER = re.compile(
    r"(?P<money>\$\d+(?:\.\d{2})?)|(?P<pct>\d+%)|(?P<count>\b\d+(?:-\d+)?)(?=\s+(?:business\s+|calendar\s+)?"
    r"(?:days?|hours?|months?|weeks?|years?|countries|points?)\b)"
)


def _policy_items(policies: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(policy_id, window containing the sentence, sentence) for every policy sentence with a number."""
    items = []
    for pol in policies:
        wins = windows(pol["text"])
        for s in sentences(pol["text"]):
            if _POLICY_NUMBER.search(s) and len(s) <= 300:
                win = next((w for w in wins if s in w), pol["text"])
                items.append((pol["policy_id"], win, s))
    return items


def _change_number(sentence: str, rng: random.Random) -> str:
    matches = list(_POLICY_NUMBER.finditer(sentence))
    m = rng.choice(matches)
    raw = m.group(0)
    if m.group("money"):
        value = float(raw[1:])
        new = value + rng.choice((-10, -5, 5, 10, 15)) if value >= 15 else value + rng.choice((-2, 1, 2, 3, 5))
        new = max(new, 1.0)
        rep = f"${new:.2f}" if "." in raw else f"${int(round(new))}"
    elif m.group("pct"):
        value = int(raw[:-1])
        rep = f"{max(1, value + rng.choice((-5, 5, 10, 15)))}%"
    else:
        parts = [int(x) for x in raw.split("-")]
        step = rng.choice((1, 2, 7, 14)) if parts[0] >= 7 else rng.choice((1, 2, 3))
        sign = rng.choice((-1, 1)) if parts[0] > step else 1
        rep = "-".join(str(x + sign * step) for x in parts)
    if rep == raw:
        rep = raw.replace(raw[-1], str((int(raw[-1]) + 1) % 10)) if raw[-1].isdigit() else raw + "0"
    return sentence[: m.start()] + rep + sentence[m.end() :]


def _policy_pairs(items: list[tuple[str, str, str]], n: int, split: str, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for _ in range(n):
        pid, win, s = rng.choice(items)
        prefix = rng.choice(_POLICY_PREFIX[split])
        first = s.split(" ", 1)[0]
        body = s[0].lower() + s[1:] if prefix and first.lower() in _COMMON_FIRST_WORDS else s
        if rng.random() < 0.5:
            claim, label, kind = prefix + body, 0, "true_policy"
        else:
            claim, label, kind = prefix + _change_number(body, rng), 1, "wrong_policy_number"
        out.append({"source": win, "claim": claim, "label": label, "kind": kind, "asin": None, "template": f"policy:{pid}"})
    return out


def make_claim_pairs(
    catalog_rows: list[dict[str, Any]],
    policies: list[dict[str, Any]],
    seed: int = 1234,
    n_train: int = 1600,
    n_test: int = 400,
    *,
    policy_share: float = 0.12,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, test) lists of ``{"source", "claim", "label" (1 = fabricated), "kind", "asin", "template"}``.

    Deterministic in ``seed``. Train and test use disjoint series (hence products), disjoint claim
    templates and disjoint policy sentences.
    """
    rng = random.Random(f"{seed}:claims")
    by_split: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for p in sorted(catalog_rows, key=lambda r: r["asin"]):
        by_split[_split_of(p["series"], seed)].append(p)
    pools = {
        "authors": sorted({p["author"] for p in catalog_rows}),
        "publishers": sorted({p["publisher"] for p in catalog_rows}) or list(_PUBLISHER_FALLBACK),
    }
    items = _policy_items(sorted(policies, key=lambda p: p["policy_id"]))
    policy_split = {"train": [], "test": []}
    for it in items:
        key = "test" if random.Random(f"{seed}:policy:{it[2]}").random() < 0.25 else "train"
        policy_split[key].append(it)
    result = {}
    for split, n in (("train", n_train), ("test", n_test)):
        n_policy = int(round(n * policy_share)) if policy_split[split] else 0
        pairs = _product_pairs(by_split[split], n - n_policy, split, pools, rng) + _policy_pairs(policy_split[split], n_policy, split, rng)
        rng.shuffle(pairs)
        result[split] = pairs
    return result["train"], result["test"]


# ----------------------------------------------------------------------------- training
def train_hallucination_scorer(
    data_dir: Path,
    out_dir: Path,
    checkpoint: Path,
    max_pairs: int = 1600,
    epochs: int = 1,
    max_length: int = 128,
    *,
    n_test: int = 400,
    batch_size: int = 16,
    lr: float = 5e-5,
    seed: int = 17,
) -> dict[str, Any]:
    """Fine-tune a cross-encoder (any HF encoder checkpoint + a 1-logit head) on :func:`make_claim_pairs`
    with BCE; saves ``out_dir/hf`` and the pairs (``out_dir/pairs/{train,test}.jsonl``); reports the
    torch model's held-out metrics (:func:`evaluate_scorer`)."""
    import json

    seed_everything(seed)
    rng = random.Random(seed)
    catalog = read_jsonl(Path(data_dir) / "catalog.jsonl")
    policies = read_jsonl(Path(data_dir) / "policies.jsonl")
    train, test = make_claim_pairs(catalog, policies, seed=seed, n_train=max_pairs, n_test=n_test)
    out_dir = Path(out_dir)
    (out_dir / "pairs").mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        with open(out_dir / "pairs" / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)

    pairs = [(*model_input(p["source"], p["claim"]), float(p["label"])) for p in train]
    model, tokenizer, train_s = fit_cross_encoder(
        pairs, checkpoint, epochs=epochs, batch_size=batch_size, lr=lr, max_length=max_length, rng=rng, desc="hallucination"
    )
    model.eval()
    model.save_pretrained(out_dir / "hf")
    tokenizer.save_pretrained(out_dir / "hf")
    score = torch_score_fn(model, tokenizer, max_length=max_length)
    return {
        "train_pairs": len(train),
        "test_pairs": len(test),
        "train_fabricated_share": round(sum(p["label"] for p in train) / max(1, len(train)), 3),
        "train_seconds": round(train_s, 1),
        "pairs_per_second": round(len(train) * epochs / max(train_s, 1e-9), 1),
        "max_length": max_length,
        "test_torch": evaluate_scorer(score, test),
    }


def torch_score_fn(model: Any, tokenizer: Any, *, max_length: int = 128, batch_size: int = 32) -> ScorePairs:
    """Raw (source, claim) pairs -> logits; applies :func:`model_input` like the serving scorer does."""
    import torch

    def score(pairs: list[tuple[str, str]]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(pairs), batch_size):
                chunk = [model_input(a, b) for a, b in pairs[i : i + batch_size]]
                enc = tokenizer([a for a, _ in chunk], [b for _, b in chunk], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
                out.append(model(**enc).logits.reshape(-1).numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    return score


# ----------------------------------------------------------------------------- evaluation
def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Mann-Whitney AUC with average ranks for ties (no sklearn needed)."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((1 - y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def evaluate_scorer(score_fn: ScorePairs, test_pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision / recall / F1 of "fabricated" at thresholds 0.3/0.5/0.7 on P = sigmoid(logit), ROC-AUC,
    and the fabricated-recall / false-alarm rate per claim kind."""
    logits = np.asarray(score_fn([(p["source"], p["claim"]) for p in test_pairs]), dtype=np.float64).reshape(-1)
    probs = sigmoid(logits)
    y = np.array([int(p["label"]) for p in test_pairs])
    report: dict[str, Any] = {"pairs": len(test_pairs), "fabricated": int(y.sum()), "roc_auc": round(roc_auc(y, probs), 4)}
    for t in THRESHOLDS:
        pred = probs >= t
        tp = int((pred & (y == 1)).sum())
        fp = int((pred & (y == 0)).sum())
        fn = int((~pred & (y == 1)).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[f"@{t}"] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "accuracy": round(float((pred == (y == 1)).mean()), 4) if len(y) else 0.0,
            "flagged_share": round(float(pred.mean()), 4) if len(y) else 0.0,
        }
    per_kind: dict[str, dict[str, float]] = {}
    for kind in sorted({p["kind"] for p in test_pairs}):
        idx = np.array([p["kind"] == kind for p in test_pairs])
        rate = float((probs[idx] >= 0.5).mean())
        key = "flagged@0.5" if y[idx][0] == 1 else "false_alarm@0.5"
        per_kind[kind] = {"n": int(idx.sum()), key: round(rate, 4), "mean_prob": round(float(probs[idx].mean()), 4)}
    report["per_kind"] = per_kind
    return report


# ----------------------------------------------------------------------------- the build step
def build_step(builder: Any, *, max_pairs: int | None = None, epochs: int = 1) -> dict[str, Any]:
    """Cached: train -> ONNX fp32/optimized/int8 (``out/onnx``, "score" head) -> measure -> choose the
    served CPU variant. Output dir ``builder.models / "hallucination_scorer"``; the report carries
    ``served_cpu_variant`` / ``served_gpu_variant`` like the other models so ``Builder.served_onnx`` works."""
    from model_repository import cache, export

    pkg = Path(__file__).resolve().parents[1]
    quick = bool(getattr(builder.cfg, "quick", False))
    pairs = max_pairs if max_pairs is not None else (64 if quick else 1600)
    n_test = 64 if quick else 400
    cfg = {"max_pairs": pairs, "n_test": n_test, "epochs": epochs, "ckpt": str(builder.checkpoint), "max_length": 128}
    key = cache.step_key(
        "hallucination_scorer",
        config=cfg,
        inputs=[builder.data / "catalog.jsonl", builder.data / "policies.jsonl"],
        code=[Path(__file__), pkg / "training" / "common.py", pkg / "export.py", pkg.parent / "server" / "hallucination" / "facts.py"],
    )

    def run(out: Path) -> dict[str, Any]:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        report = train_hallucination_scorer(builder.data, out, builder.checkpoint, max_pairs=pairs, epochs=epochs, n_test=n_test)
        hf = out / "hf"
        paths = export.export_variants(hf, out / "onnx", "score")
        tok = AutoTokenizer.from_pretrained(hf)
        test = read_jsonl(out / "pairs" / "test.jsonl")
        raw_pairs = [(p["source"], p["claim"]) for p in test]
        pair_list = [model_input(a, b) for a, b in raw_pairs]  # what the served model receives
        y = np.array([p["label"] for p in test])
        ref = torch_score_fn(AutoModelForSequenceClassification.from_pretrained(hf).eval(), tok)(raw_pairs).reshape(-1, 1)

        def quality(scores: np.ndarray, reference: np.ndarray) -> dict[str, float]:
            s, r = scores.reshape(-1), reference.reshape(-1)
            return {
                "roc_auc": round(roc_auc(y, sigmoid(s)), 4),
                "agreement_with_torch@0.5": round(float(((s >= 0) == (r >= 0)).mean()), 4),
                "max_abs_diff": round(float(np.abs(s - r).max()), 4),
            }

        feeds = export.token_feeds(tok, pair_list, max_length=128)
        bench = lambda b: export.token_feeds(tok, (pair_list * 2)[:b], max_length=128, batch_size=b)[0]  # noqa: E731
        variants = export.measure_variants(paths, feeds, ref, quality, bench)
        torch_auc = variants["fp32"]["quality"]["roc_auc"]
        chosen = export.choose(variants, lambda q: q["agreement_with_torch@0.5"] >= 0.97 and q["roc_auc"] >= torch_auc - 0.01)
        sess = export.session(paths[chosen])

        def served(p: list[tuple[str, str]]) -> np.ndarray:
            p = [model_input(a, b) for a, b in p]
            return np.concatenate([sess.run(None, f)[0] for f in export.token_feeds(tok, p, max_length=128)]).reshape(-1)

        report["test_served"] = evaluate_scorer(served, test)
        print(f"[hallucination] served {chosen}: auc {report['test_served']['roc_auc']} @0.5 {report['test_served']['@0.5']}", flush=True)
        report.update({"variants": variants, "served_cpu_variant": chosen, "served_gpu_variant": "fp32"})
        return report

    return cache.cached_step(builder.models / "hallucination_scorer", key, run, label="hallucination_scorer")
