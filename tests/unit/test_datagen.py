"""Generated data: determinism, sizes, formats, label set, held-out templates, triple integrity."""

from __future__ import annotations

import collections
import json
import pathlib
import re
import time

import pytest

from model_repository.datagen import generate_all, read_jsonl
from model_repository.datagen.__main__ import main as datagen_main
from model_repository.datagen.intents import TEMPLATES
from model_repository.datagen.policies import TOPICS, topic_word_counts
from model_repository.datagen.triples import POLICY_QUERIES, held_out_templates
from server.intents import INTENT_LABELS

pytestmark = pytest.mark.L0

SEED = 1234
FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "intents_handwritten.jsonl"
ASIN = re.compile(r"B0[A-Z0-9]{8}")
ORDER_ID = re.compile(r"MA-\d{8}")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, pathlib.Path], float]:
    out = tmp_path_factory.mktemp("data")
    start = time.perf_counter()
    paths = generate_all(out, seed=SEED)
    return paths, time.perf_counter() - start


@pytest.fixture(scope="module")
def paths(generated) -> dict[str, pathlib.Path]:
    return generated[0]


@pytest.fixture(scope="module")
def data(paths) -> dict[str, list[dict]]:
    return {name: read_jsonl(path) for name, path in paths.items()}


def _norm(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.lower()).strip()  # word characters of any script (kana, kanji)


def test_writes_every_contract_file(paths):
    assert sorted(paths) == sorted([
        "catalog", "policies", "orders", "documents", "series", "intents/train", "intents/validation", "intents/test",
        "triples/train", "triples/test"])
    root = paths["catalog"].parent
    for rel in ("catalog.jsonl", "policies.jsonl", "orders.jsonl", "documents.jsonl", "intents/train.jsonl",
                "intents/validation.jsonl", "intents/test.jsonl", "triples/train.jsonl", "triples/test.jsonl"):
        assert (root / rel).is_file(), rel


def test_fast_enough(generated):
    assert generated[1] < 30.0


def test_same_seed_gives_identical_bytes(paths, tmp_path):
    again = generate_all(tmp_path / "again", seed=SEED)
    for name, path in paths.items():
        assert path.read_bytes() == again[name].read_bytes(), name


def test_other_seed_gives_other_data(paths, tmp_path):
    other = generate_all(tmp_path / "other", seed=SEED + 1)
    assert paths["catalog"].read_bytes() != other["catalog"].read_bytes()
    assert paths["intents/train"].read_bytes() != other["intents/train"].read_bytes()


def test_cli_writes_the_data(tmp_path, capsys):
    assert datagen_main(["--out", str(tmp_path / "cli"), "--seed", "7"]) == 0
    assert (tmp_path / "cli" / "intents" / "test.jsonl").is_file()
    assert "catalog" in capsys.readouterr().out


def test_catalog_records(data):
    catalog = data["catalog"]
    assert len(catalog) >= 2000
    assert len({p["series"] for p in catalog}) >= 150
    asins = [p["asin"] for p in catalog]
    assert len(set(asins)) == len(asins)
    assert asins == sorted(asins)
    keys = {"asin", "title", "series", "volume", "author", "publisher", "format", "language", "age_rating",
            "genres", "price", "stock", "release_date", "description", "review_summary"}
    for p in catalog:
        assert set(p) == keys
        assert ASIN.fullmatch(p["asin"]), p["asin"]
        assert p["format"] in {"tankobon", "omnibus", "box_set", "digital"}
        assert p["age_rating"] in {"All Ages", "Teen", "Older Teen", "Mature"}
        assert isinstance(p["price"], float) and p["price"] > 0 and round(p["price"], 2) == p["price"]
        assert isinstance(p["stock"], int) and p["stock"] >= 0
        assert (p["volume"] is None) == (p["format"] == "box_set")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", p["release_date"])
        assert p["genres"] and all(isinstance(g, str) for g in p["genres"])
        assert 2 <= p["description"].count(". ") + 1 <= 6
        assert p["review_summary"]
    assert {p["format"] for p in catalog} == {"tankobon", "omnibus", "box_set", "digital"}
    assert len({p["language"] for p in catalog}) >= 4
    # Some authors write several series (the "same author" hard negatives depend on it).
    series_per_author = collections.Counter(a for a, _ in {(p["author"], p["series"]) for p in catalog})
    assert max(series_per_author.values()) >= 2


def test_policies(data):
    policies = data["policies"]
    assert {p["topic"] for p in policies} == set(TOPICS)
    assert len({p["policy_id"] for p in policies}) == len(policies)
    assert all(len([p for p in policies if p["topic"] == t]) >= 3 for t in TOPICS)
    assert all(300 <= n <= 600 for n in topic_word_counts().values()), topic_word_counts()
    text = " ".join(p["text"] for p in policies)
    assert "$35" in text and "30 days" in text


def test_orders(data):
    orders = data["orders"]
    assert len(orders) == 500
    asins = {p["asin"] for p in data["catalog"]}
    assert len({o["order_id"] for o in orders}) == len(orders)
    for o in orders:
        assert ORDER_ID.fullmatch(o["order_id"])
        assert o["status"] in {"processing", "shipped", "out_for_delivery", "delivered", "cancelled"}
        assert o["items"] and set(o["items"]) <= asins
        assert o["eta"] >= o["placed_at"]


def test_documents(data):
    docs = data["documents"]
    ids = [d["doc_id"] for d in docs]
    assert len(set(ids)) == len(ids)
    by_type = collections.Counter(d["source_type"] for d in docs)
    assert by_type["product"] == by_type["review"] == len(data["catalog"])
    assert by_type["policy"] == len(data["policies"])
    for d in docs:
        assert d["text"].strip()
        assert (d["asin"] is None) == (d["source_type"] == "policy")


def test_intent_sizes_and_labels(data):
    total = collections.Counter()
    for split in ("train", "validation", "test"):
        rows = data[f"intents/{split}"]
        assert {r["label"] for r in rows} == set(INTENT_LABELS), split
        assert all(set(r) == {"text", "label", "template_id"} for r in rows)
        total.update(r["label"] for r in rows)
    assert sum(total.values()) >= 6000
    assert min(total.values()) >= 500
    assert max(total.values()) <= 1.3 * min(total.values())  # roughly balanced


def test_enough_templates_per_label():
    assert set(TEMPLATES) == set(INTENT_LABELS)
    for label, templates in TEMPLATES.items():
        assert len(templates) >= 40, label
        assert len(set(templates)) == len(templates), label


def test_no_template_leakage_between_splits(data):
    owners: dict[str, str] = {}
    for split in ("train", "validation", "test"):
        for r in data[f"intents/{split}"]:
            for tid in r["template_id"].split("+"):  # combined messages: every component is held out
                assert owners.setdefault(tid, split) == split, f"{tid} in {owners[tid]} and {split}"
    texts = {split: {_norm(r["text"]) for r in data[f"intents/{split}"]} for split in ("train", "validation", "test")}
    assert not texts["train"] & texts["test"]
    assert not texts["train"] & texts["validation"]
    assert not texts["validation"] & texts["test"]


def test_no_template_dominates_a_split(data):
    """One slot-rich template must not fill a held-out split (it once made 30 of 105 chitchat test rows)."""
    for split in ("train", "validation", "test"):
        rows = data[f"intents/{split}"]
        for label in INTENT_LABELS:
            per_template = collections.Counter(r["template_id"].split("+")[0] for r in rows if r["label"] == label)
            total = sum(per_template.values())
            assert max(per_template.values()) <= max(3, -(-3 * total // (2 * len(per_template)))) + 1, (split, label)
            assert max(per_template.values()) / total < 0.2, (split, label, per_template.most_common(1))


def test_generated_data_has_the_promised_variety(data):
    rows = [r for s in ("train", "validation", "test") for r in data[f"intents/{s}"]]
    text = "\n".join(r["text"] for r in rows)
    assert sum("+" in r["template_id"] for r in rows) > 200  # multi-intent messages
    assert any(r["text"].isupper() and len(r["text"]) > 10 for r in rows)  # ALL CAPS
    for token in ("arigatou", "sumimasen", "ngl", "lowkey", "tankobon", "omnibus", "isekai", "MA-"):
        assert token.lower() in text.lower(), token
    assert re.search(r"[\U0001F300-\U0001FAFF]", text)  # emoji


def test_handwritten_fixture_is_not_generated(data):
    fixture = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert collections.Counter(r["label"] for r in fixture) == {label: 25 for label in INTENT_LABELS}
    generated = {_norm(r["text"]) for s in ("train", "validation", "test") for r in data[f"intents/{s}"]}
    # Greetings are a closed set ("arigatou", "agent please"): only longer messages must be new.
    longer = {_norm(r["text"]) for r in fixture if len(r["text"].split()) >= 4}
    assert len(longer) >= 150
    assert not longer & generated


def test_triples_reference_documents_with_hard_negatives(data):
    docs = {d["doc_id"]: d for d in data["documents"]}
    catalog = {p["asin"]: p for p in data["catalog"]}
    assert 3800 <= len(data["triples/train"]) <= 4200
    assert 550 <= len(data["triples/test"]) <= 650
    kinds = collections.Counter()
    for split in ("train", "test"):
        for t in data[f"triples/{split}"]:
            assert set(t) == {"query", "positive_doc_id", "negative_doc_id"}
            pos, neg = docs[t["positive_doc_id"]], docs[t["negative_doc_id"]]
            assert pos["doc_id"] != neg["doc_id"]
            kinds[pos["source_type"]] += 1
            if pos["source_type"] == "policy":
                assert neg["source_type"] == "policy"
                assert pos["doc_id"].split("-")[0] == neg["doc_id"].split("-")[0]  # same topic
            else:
                p, n = catalog[pos["asin"]], catalog[neg["asin"]]
                assert p["series"] == n["series"] or p["author"] == n["author"], t
    assert all(kinds[k] > 100 for k in ("product", "review", "policy")), kinds


def test_triple_test_queries_use_held_out_templates(data):
    for kind, (train_t, test_t) in held_out_templates(SEED).items():
        assert test_t and train_t and not set(train_t) & set(test_t), kind
    train_q = {t["query"] for t in data["triples/train"]}
    test_q = {t["query"] for t in data["triples/test"]}
    assert not train_q & test_q
    phrasings = [q for qs in POLICY_QUERIES.values() for q in qs]
    assert len(set(phrasings)) == len(phrasings)
