"""How a follow-up relates to the conversation's state: a learned classifier plus slot extraction.

``classify(text)`` -> :class:`Relation`: the relation (``same_item`` / ``other_volume`` / ``attribute`` /
``same_author`` / ``order`` / ``new_topic``, server/stages/relation_data.py), its probability, the attribute asked
(a second classifier, over author / publisher / pages / format / language / release_date / rating) and the slots
the words carry: a volume number (digits, "vol 4", "4巻", a number word, an ordinal "the fifth"), a relative step
("the next one" +1, "the one before" -1), and a pick ordinal ("the second one" -> index 1).

Both classifiers are char (2-5, word-bounded) + word (1-2) n-gram TF-IDF logistic regressions, trained in-process
from the generated messages of relation_data.py at first use (``warm()`` at service start; ~1-2 s) -- never on
the evaluation sets. One prediction is a sparse dot product: about 0.2-0.4 ms on this box (``python -m
server.stages.relation --bench``).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.stages import relation_data as data

#: Below this probability the message is read as standing alone (a wrong resolution answers about the wrong book).
MIN_PROBABILITY = 0.45


@dataclass(frozen=True)
class Relation:
    relation: str  # one of relation_data.RELATIONS
    probability: float = 0.0
    attribute: str | None = None  # for "attribute": which one
    volume: int | None = None  # an absolute volume the message names
    step: int = 0  # a relative volume: +1 next, -1 previous
    pick: int | None = None  # "the second one" -> 1, "the last one" -> -1
    volume_span: tuple[int, int] | None = None  # where the volume reference is in the text


_lock = threading.Lock()
_models: dict[str, Any] = {}


def _vectorizer() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, lowercase=True, dtype=np.float32)),
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)\b\w+\b", sublinear_tf=True,
                                 dtype=np.float32)),
    ])


def warm() -> None:
    """Train both classifiers (once per process): one vectorizer, two logistic-regression heads."""
    from sklearn.linear_model import LogisticRegression

    with _lock:
        if _models:
            return
        texts, labels, a_texts, a_labels = data.examples()
        texts, a_texts = [_digits(t) for t in texts], [_digits(t) for t in a_texts]
        vec = _vectorizer().fit(texts + a_texts)
        heads = {}
        for name, (x, y) in {"relation": (texts, labels), "attribute": (a_texts, a_labels)}.items():
            lr = LogisticRegression(C=6.0, solver="newton-cg", max_iter=300, class_weight="balanced").fit(vec.transform(x), y)
            heads[name] = (lr.coef_.T.astype(np.float32), lr.intercept_.astype(np.float32), list(lr.classes_))
        _models.update(vec=vec, **heads)


_DIGITS = re.compile(r"\d+")


def _digits(text: str) -> str:
    """Every number as one digit: "vol 12", "#4", "2巻" read as the same shape whatever the number (the number itself
    is a slot, read by :func:`volume_slot`, not a feature)."""
    return _DIGITS.sub("0", text)


def _features(text: str) -> Any:
    """The FeatureUnion's vector of ``text`` as (indices, values), computed directly from the fitted vocabularies
    and idf weights (the same numbers as ``vec.transform``, without its per-call overhead: ~10x faster)."""
    if not _models:
        warm()
    if "fast" not in _models:
        parts, offset = [], 0
        for _, v in _models["vec"].transformer_list:
            parts.append((v.build_analyzer(), v.vocabulary_, v.idf_, offset))
            offset += len(v.vocabulary_)
        _models["fast"] = parts
    indices: list[int] = []
    values: list[float] = []
    text = _digits(text)
    for analyze, vocabulary, idf, offset in _models["fast"]:
        counts: dict[int, int] = {}
        for gram in analyze(text):
            j = vocabulary.get(gram)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        if not counts:
            continue
        idx = np.fromiter(counts, dtype=np.int64, count=len(counts))
        w = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))) * idf[idx]
        w /= np.sqrt((w * w).sum())
        indices.extend((idx + offset).tolist())
        values.extend(w.tolist())
    return np.asarray(indices, dtype=np.int64), np.asarray(values, dtype=np.float32)


def _distribution(name: str, x: Any) -> dict[str, float]:
    """The ``name`` head's probability of each class for the features ``x`` (softmax of the logits)."""
    coef, intercept, classes = _models[name]
    idx, val = x
    z = val @ coef[idx] + intercept
    z = np.exp(z - z.max())
    return dict(zip(classes, (z / z.sum()).tolist()))


def _predict(name: str, x: Any) -> tuple[str, float]:
    p = _distribution(name, x)
    best = max(p, key=p.__getitem__)
    return best, p[best]


# ------------------------------------------------------------------------------------------------ slots
_NUMBER_WORDS = {w: n for n, w in data.NUMBER_WORDS.items()}
_NTH_WORDS = {w: n for n, w in data.NTH.items()} | {"first": 1}
_VOLUME = re.compile(
    r"(?:\b(?:vol(?:ume)?s?\.?|v\.|book|part|number|no\.?|installment)\s*#?\s*|#\s*)(?P<a>\d{1,3})\b"
    r"|(?P<b>\d{1,3})\s*巻"
    r"|\b(?P<c>\d{1,3})(?:st|nd|rd|th)\b"
    r"|\b(?:vol(?:ume)?\.?|book|number|part)\s+(?P<w>" + "|".join(_NUMBER_WORDS) + r")\b"
    r"|\b(?:the\s+)?(?P<nth>" + "|".join(sorted(_NTH_WORDS, key=len, reverse=True)) + r")\b"
    r"|(?<![\w$.])(?P<d>\d{1,3})(?![\w.%$])",
    re.I,
)
_NEXT = re.compile(r"\bnext\b|\bafter\b|\bfollowing\b|\bsequel\b|次の|続き", re.I)
_PREVIOUS = re.compile(r"\bbefore\b|\bprevious\b|\bprior\b|\bearlier\b|\bpreceding\b|\bback one\b|\bone back\b|前の", re.I)
_PICK = re.compile(r"\b(?P<o>first|second|third|last|1st|2nd|3rd)\b", re.I)
_PICKS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "last": -1}


def volume_slot(text: str) -> tuple[int | None, int, tuple[int, int] | None]:
    """(absolute volume or None, relative step, span of the reference)."""
    m = _VOLUME.search(text)
    if m is not None:
        if m.group("nth"):
            return _NTH_WORDS[m.group("nth").lower()], 0, m.span()
        if m.group("w"):
            return _NUMBER_WORDS[m.group("w").lower()], 0, m.span()
        n = m.group("a") or m.group("b") or m.group("c") or m.group("d")
        return int(n), 0, m.span()
    if _NEXT.search(text):
        return None, 1, None
    if _PREVIOUS.search(text):
        return None, -1, None
    return None, 0, None


#: Relations that need an item in play; without one, the only thing they can refer to is the order in play
_ITEM_RELATIONS = ("same_item", "other_volume", "attribute")


def _given_state(x: Any, has_item: bool, has_order: bool) -> tuple[str, float]:
    """The relation and its probability *given what the state holds*: a relation whose slot the state lacks cannot be
    meant, so its probability is taken out and the rest renormalised -- except that, with an order but no item in
    play, "is it still processing?" asks about the order (the item relations' mass goes to ``order``)."""
    p = _distribution("relation", x)
    if not has_item:
        moved = sum(p.pop(r, 0.0) for r in _ITEM_RELATIONS)
        p.pop("same_author", None)
        if has_order:
            p["order"] = p.get("order", 0.0) + moved
    if not has_order:
        p.pop("order", None)
    total = sum(p.values()) or 1.0
    relation = max(p, key=p.__getitem__)
    return relation, p[relation] / total


def classify(text: str, *, has_item: bool = True, has_order: bool = True) -> Relation:
    """How ``text`` relates to a state holding an item (``has_item``) and/or an order (``has_order``)."""
    x = _features(text)
    relation, p = _given_state(x, has_item, has_order)
    attribute = _predict("attribute", x)[0] if relation == "attribute" else None
    volume, step, span = volume_slot(text) if relation == "other_volume" else (None, 0, None)
    pick = None
    if relation == "same_item":
        m = _PICK.search(text)
        pick = _PICKS[m.group("o").lower()] if m else None
    return Relation(relation, p, attribute, volume, step, pick, span)


if __name__ == "__main__":  # python -m server.stages.relation --bench
    import statistics
    import sys
    import time

    t0 = time.perf_counter()
    warm()
    print(f"trained in {time.perf_counter() - t0:.2f} s")
    msgs = ["who's the mangaka on that?", "can i get the fifth one instead?", "anything else by her?",
            "so when will it get here?", "cool, thanks!", "is berserk vol 2 in stock?"] * 200
    times = []
    for m in msgs:
        t = time.perf_counter()
        classify(m)
        times.append((time.perf_counter() - t) * 1e6)
    print(f"classify: median {statistics.median(times):.0f} us, p99 {sorted(times)[int(len(times) * 0.99)]:.0f} us")
    for m in sys.argv[1:]:
        if m != "--bench":
            print(m, classify(m))
