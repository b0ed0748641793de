"""Hallucination scorer training data and evaluation (no model training here: fake score functions)."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from model_repository.datagen.catalog import generate_catalog
from model_repository.datagen.policies import generate_policies
from model_repository.training.hallucination import (
    PAIR_FIELDS,
    _fields,
    evaluate_scorer,
    make_claim_pairs,
    roc_auc,
)
from server.hallucination.facts import fact_text

pytestmark = pytest.mark.L0


@pytest.fixture(scope="module")
def data():
    products, _ = generate_catalog(random.Random("1234:catalog"))
    return products, generate_policies()


@pytest.fixture(scope="module")
def pairs(data):
    products, policies = data
    return make_claim_pairs(products, policies, seed=5, n_train=800, n_test=300)


def test_deterministic_and_sized(data, pairs) -> None:
    products, policies = data
    train, test = pairs
    assert (train, test) == make_claim_pairs(products, policies, seed=5, n_train=800, n_test=300)
    assert make_claim_pairs(products, policies, seed=6, n_train=800, n_test=300)[0] != train
    assert len(train) == 800 and len(test) == 300
    for p in train + test:
        assert set(p) == set(PAIR_FIELDS) and p["label"] in (0, 1) and p["source"] and p["claim"]
    for split in (train, test):
        share = sum(p["label"] for p in split) / len(split)
        assert 0.35 <= share <= 0.7  # both classes well represented
        kinds = {p["kind"] for p in split}
        assert {"true", "true_policy", "wrong_author", "wrong_price", "wrong_volume", "wrong_release",
                "wrong_format", "wrong_language", "wrong_policy_number", "unsupported"} <= kinds


def test_no_product_template_or_policy_sentence_overlap(data, pairs) -> None:
    products, _ = data
    train, test = pairs
    series = {p["asin"]: p["series"] for p in products}
    train_asins = {p["asin"] for p in train if p["asin"]}
    test_asins = {p["asin"] for p in test if p["asin"]}
    assert train_asins and test_asins and not train_asins & test_asins
    assert not {series[a] for a in train_asins} & {series[a] for a in test_asins}  # whole series held out
    product_templates = lambda split: {p["template"] for p in split if not p["template"].startswith("policy:")}  # noqa: E731
    assert not product_templates(train) & product_templates(test)
    true_policy = lambda split: {p["claim"].split(": ", 1)[-1].lower() for p in split if p["kind"] == "true_policy"}  # noqa: E731
    assert not {c[-60:] for c in true_policy(train)} & {c[-60:] for c in true_policy(test)}


def test_labels_match_the_catalog(data, pairs) -> None:
    products, _ = data
    by_asin = {p["asin"]: p for p in products}
    train, test = pairs
    for pair in train + test:
        if pair["asin"] is None:
            continue
        p = by_asin[pair["asin"]]
        template = pair["template"].split(":", 1)[1]
        truth = template.format(**_fields(p))
        if pair["kind"] == "true":
            assert pair["label"] == 0 and pair["claim"] == truth and pair["source"] == fact_text(p)
            continue
        assert pair["label"] == 1
        if pair["kind"] == "unsupported":
            assert pair["claim"] == truth and pair["source"] != fact_text(p)
            assert f"Series: {p['series']}\n" not in pair["source"]
            continue
        assert pair["source"] == fact_text(p) and pair["claim"] != truth
        kind = pair["kind"].removeprefix("wrong_")
        claim = pair["claim"].replace(p["title"], "<title>")  # titles carry "(Spanish Edition)" etc.
        if kind == "author":
            assert p["author"] not in claim
        elif kind == "price":
            assert f"{p['price']:.2f}" not in claim and re.search(r"\d+\.\d\d", claim)
        elif kind == "volume":
            numbers = [int(n) for n in re.findall(r"(?:volume|Volume|#)\s*(\d+)", claim)]
            assert numbers and numbers[0] != p["volume"]
        elif kind == "release":
            assert p["release_date"] not in claim
        elif kind == "language":
            assert p["language"] not in claim
        elif kind == "format":
            assert not claim.endswith(f" {_fields(p)['format']} edition.")


def _policy_body(claim: str) -> str:
    """The policy sentence inside a policy claim (without its "Per our policy: " style prefix)."""
    for prefix in ("Per our policy: ", "According to the store policy, ", "Good news: "):
        if claim.startswith(prefix):
            return claim[len(prefix):]
    return claim


def test_policy_pairs(pairs) -> None:
    from server.hallucination.facts import sentences

    train, test = pairs
    skeleton = lambda text: re.sub(r"\d+", "#", text[0].lower() + text[1:])  # noqa: E731
    n = 0
    for pair in train + test:
        if pair["asin"] is not None:
            continue
        n += 1
        body = _policy_body(pair["claim"])
        originals = [x for x in sentences(pair["source"]) if skeleton(x) == skeleton(body)]
        assert originals, pair  # the claim is one of the source's sentences, numbers aside
        if pair["kind"] == "true_policy":
            assert pair["label"] == 0 and any(o[1:] == body[1:] for o in originals)
        else:
            assert pair["kind"] == "wrong_policy_number" and pair["label"] == 1
            assert all(o[1:] != body[1:] for o in originals)  # one number changed
    assert n > 50


def test_roc_auc_matches_definition() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([1, 1, 0], [0.9, 0.8, 0.1]) == pytest.approx(1.0)
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_evaluate_scorer_with_an_oracle_and_a_coin(pairs) -> None:
    _, test = pairs
    label_of = {(p["source"], p["claim"]): p["label"] for p in test}
    oracle = evaluate_scorer(lambda ps: np.array([4.0 if label_of[x] else -4.0 for x in ps]), test)
    assert oracle["roc_auc"] == 1.0
    for t in ("@0.3", "@0.5", "@0.7"):
        assert oracle[t]["precision"] == 1.0 and oracle[t]["recall"] == 1.0
    assert oracle["per_kind"]["true"]["false_alarm@0.5"] == 0.0
    assert oracle["per_kind"]["wrong_author"]["flagged@0.5"] == 1.0
    rng = np.random.default_rng(0)
    coin = evaluate_scorer(lambda ps: rng.normal(size=len(ps)), test)
    assert 0.35 < coin["roc_auc"] < 0.65
    # thresholds are on sigmoid(logit): a constant logit of 0.2 (p=0.55) flags everything at 0.3/0.5, nothing at 0.7
    const = evaluate_scorer(lambda ps: np.full(len(ps), 0.2), test)
    assert const["@0.5"]["recall"] == 1.0 and const["@0.7"]["recall"] == 0.0
