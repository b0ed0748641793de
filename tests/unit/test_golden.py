"""The golden evaluation set: contract, stratification, grounding in the data, determinism, no training leak."""

from __future__ import annotations

import collections
import json
import pathlib
import re

import pytest

from contracts.catalog import guest_customer, order_customer
from model_repository.datagen import generate_all, read_jsonl
from model_repository.datagen.intents import TEMPLATES
from model_repository.datagen.triples import POLICY_QUERIES
from model_repository.golden import EDGE_TAGS, PII_KINDS, generate_golden, write_golden
from model_repository.golden.__main__ import main as golden_main
from model_repository.golden.generate import (
    ASK_ORDER, ASPECTS, DECLINE, ESCALATE, HANDWRITTEN, LEAK, NOT_FOUND, STATUS_WORDS, has_japanese, normalise,
)
from server.intents import INTENT_LABELS

pytestmark = pytest.mark.L0

SEED = 1234
RECORD_KEYS = ["id", "message", "intent", "also_intents", "complexity", "edge", "source", "entity", "must_state", "must_not_state",
               "expect", "reference", "customer_id"]
ENTITY_KEYS = ["series", "asin", "carried", "order_id", "policy_id", "genre"]
EXPECT_KEYS = ["decline", "blocked", "redact", "escalate", "ask_order_id"]
ORDER_ID = re.compile(r"(?<![A-Za-z0-9])MA-\d{8}(?!\d)", re.IGNORECASE)  # no \b: "番号MA-…" has none
PRICE = re.compile(r"^\$\d+(?:\.\d{2})?$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
VOLUMES = re.compile(r"^(\d+) vol(?:ume)?s$")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("data")
    generate_all(out, seed=SEED)
    return out


@pytest.fixture(scope="module")
def golden(data_dir: pathlib.Path) -> list[dict]:
    return generate_golden(data_dir, seed=SEED)


@pytest.fixture(scope="module")
def store(data_dir: pathlib.Path) -> dict:
    products = read_jsonl(data_dir / "catalog.jsonl")
    return {
        "products": {p["asin"]: p for p in products},
        "by_series": _group(products, "series"),
        "volumes": collections.Counter(p["series"] for p in products if p["format"] == "tankobon" and p["language"] == "English"),
        "orders": {o["order_id"]: o for o in read_jsonl(data_dir / "orders.jsonl")},
        "policies": {p["policy_id"]: p for p in read_jsonl(data_dir / "policies.jsonl")},
        "series": {s["series"]: s for s in read_jsonl(data_dir / "series.jsonl")},
        "genres": {g for p in products for g in p["genres"]},
    }


def _group(rows: list[dict], key: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = collections.defaultdict(list)
    for r in rows:
        out[r[key]].append(r)
    return out


def _contains(text: str, needle: str) -> bool:
    return needle.lower() in text.lower()


# ------------------------------------------------------------------------------------------- contract
def test_size_and_sources(golden: list[dict]) -> None:
    assert 500 <= len(golden) <= 650
    sources = collections.Counter(r["source"] for r in golden)
    assert sources["handwritten"] >= 150 and sources["generated"] >= 300
    # every hand-written line resolves against the default-seed data (none dropped for a missing edition or a leak)
    assert sources["handwritten"] == len(read_jsonl(HANDWRITTEN))
    assert len({r["id"] for r in golden}) == len(golden)


def test_every_record_follows_the_contract(golden: list[dict]) -> None:
    for r in golden:
        rid = r["id"]
        assert list(r) == RECORD_KEYS, rid
        assert re.fullmatch(rf"gen-{r['intent']}-\d{{4}}", rid) if r["source"] == "generated" else re.fullmatch(r"hw-\d{3}", rid), rid
        assert r["source"] in ("generated", "handwritten"), rid
        assert isinstance(r["message"], str) and r["message"].strip() and "{" not in r["message"], rid
        assert r["intent"] in INTENT_LABELS, rid
        assert set(r["also_intents"]) <= set(INTENT_LABELS) - {r["intent"]}, rid
        assert bool(r["also_intents"]) == (r["complexity"] == "multi_intent"), rid  # every multi-intent record has its other asks
        assert r["complexity"] in ("simple", "detailed", "multi_intent"), rid
        assert r["edge"] and set(r["edge"]) <= set(EDGE_TAGS) and len(set(r["edge"])) == len(r["edge"]), rid
        assert r["edge"] == ["none"] or "none" not in r["edge"], rid
        assert list(r["entity"]) == ENTITY_KEYS, rid
        assert all(v is None or isinstance(v, str) for k, v in r["entity"].items() if k != "carried"), rid
        assert r["entity"]["carried"] in (None, True, False), rid
        assert list(r["expect"]) == EXPECT_KEYS, rid
        assert all(isinstance(r["expect"][k], bool) for k in EXPECT_KEYS if k != "redact"), rid
        assert set(r["expect"]["redact"]) <= set(PII_KINDS), rid
        # sent as the order's owner: the service answers only the calling customer's orders
        owner = order_customer(r["entity"]) if r["entity"]["order_id"] else guest_customer(rid)
        assert r["customer_id"] == owner, rid
        assert isinstance(r["must_state"], list) and isinstance(r["must_not_state"], list), rid
        for group in r["must_state"]:
            assert isinstance(group, list) and group and all(isinstance(a, str) and a.strip() for a in group), rid
        assert all(isinstance(s, str) and s for s in r["must_not_state"]), rid
        assert len(r["must_state"]) <= (6 if r["complexity"] == "multi_intent" else 3), rid
        assert isinstance(r["reference"], str) and r["reference"].strip() and "{" not in r["reference"], rid


def test_edge_tags_agree_with_the_records(golden: list[dict]) -> None:
    for r in golden:
        edge, rid = set(r["edge"]), r["id"]
        assert ("multi_intent" in edge) == (r["complexity"] == "multi_intent"), rid
        assert ("japanese_script" in edge) == has_japanese(r["message"]), rid
        assert ("pii" in edge) == bool(r["expect"]["redact"]), rid
        assert ("not_carried" in edge) == (r["entity"]["carried"] is False), rid
        if r["expect"]["blocked"]:
            assert "adversarial" in edge, rid
        if "order_lookup" in edge:
            assert r["entity"]["order_id"] or ORDER_ID.search(r["message"]) or r["expect"]["ask_order_id"] \
                or "adversarial" in edge, rid
        if "numbers" in edge:
            assert re.search(r"\d", r["message"]), rid


def test_stratified(golden: list[dict]) -> None:
    by_intent = collections.Counter(r["intent"] for r in golden)
    assert all(by_intent[i] >= 40 for i in INTENT_LABELS), by_intent
    edges = collections.Counter(t for r in golden for t in r["edge"])
    assert all(edges[t] >= 15 for t in EDGE_TAGS), edges
    assert edges["adversarial"] >= 30 and edges["not_carried"] >= 30 and edges["japanese_script"] >= 40, edges
    complexity = collections.Counter(r["complexity"] for r in golden)
    assert complexity["detailed"] >= 40 and complexity["multi_intent"] >= 30 and complexity["simple"] >= 200, complexity
    # both parts cover every intent
    for source in ("generated", "handwritten"):
        assert {r["intent"] for r in golden if r["source"] == source} == set(INTENT_LABELS), source
    # Japanese-script records exist for every intent
    assert {r["intent"] for r in golden if "japanese_script" in r["edge"]} == set(INTENT_LABELS)


# ----------------------------------------------------------------------------------- kept apart from training
def test_no_golden_message_is_a_training_message(golden: list[dict], data_dir: pathlib.Path) -> None:
    training = {normalise(t["text"]) for split in ("train", "validation", "test")
                for t in read_jsonl(data_dir / "intents" / f"{split}.jsonl")}
    keys = [normalise(r["message"]) for r in golden]
    assert not [r["id"] for r, k in zip(golden, keys) if k in training]
    assert len(set(keys)) == len(keys), "duplicate golden messages"


def test_generated_phrasings_are_not_intent_templates_or_policy_queries(golden: list[dict]) -> None:
    """A generated message is no instance of an intents.py template (each slot = 1-5 words) or a triples query."""
    slot, sentinel = r"\S+(?: \S+){0,4}", "zzslotzz"
    patterns = []
    for templates in TEMPLATES.values():
        for t in templates:
            words = normalise(re.sub(r"\{\w+\}", f" {sentinel} ", t)).split()
            if sum(w != sentinel for w in words) >= 2:  # "{title}: {attr}?" says nothing about phrasing
                patterns.append(re.compile(" ".join(slot if w == sentinel else re.escape(w) for w in words)))
    patterns += [re.compile(re.escape(normalise(q))) for qs in POLICY_QUERIES.values() for q in qs]
    copied = [r["id"] for r in golden if r["source"] == "generated"
              and any(p.fullmatch(normalise(r["message"])) for p in patterns)]
    assert not copied


# ----------------------------------------------------------------------------------------- grounding
def test_referenced_entities_exist(golden: list[dict], store: dict) -> None:
    for r in golden:
        e, rid = r["entity"], r["id"]
        if e["asin"]:
            assert e["asin"] in store["products"], rid
            assert store["products"][e["asin"]]["series"] == e["series"], rid
        if e["order_id"]:
            assert e["order_id"] in store["orders"], rid
            assert _contains(r["message"], e["order_id"]), rid
        if e["policy_id"]:
            assert e["policy_id"] in store["policies"], rid
        if e["genre"]:
            assert e["genre"] in store["genres"], rid
        if e["series"]:
            assert e["series"] in store["series"], rid
            assert store["series"][e["series"]]["carried"] is e["carried"], rid
        for oid in ORDER_ID.findall(r["message"]):
            known = oid.upper() in store["orders"]
            assert known or ([*NOT_FOUND] in r["must_state"]), f"{rid}: unknown order id without a not-found check"


def test_product_figures_equal_the_catalog(golden: list[dict], store: dict) -> None:
    checked = 0
    for r in golden:
        p = store["products"].get(r["entity"]["asin"] or "")
        if p is None:
            continue
        policy_text = store["policies"][r["entity"]["policy_id"]]["text"] if r["entity"]["policy_id"] else ""
        series_prices = {f"${q['price']:.2f}" for q in store["by_series"][p["series"]]}
        for group in r["must_state"]:
            for alt in group:
                if PRICE.match(alt):
                    assert alt == f"${p['price']:.2f}" or alt in policy_text or alt in series_prices, (r["id"], alt)
                    checked += alt == f"${p['price']:.2f}"
                elif ISO_DATE.match(alt):
                    assert alt == p["release_date"], (r["id"], alt)
                    checked += 1
                elif VOLUMES.match(alt):
                    assert int(VOLUMES.match(alt).group(1)) == store["volumes"][p["series"]], (r["id"], alt)
            if group[0] == "in stock" and p["format"] != "digital":
                assert p["stock"] > 0, r["id"]
            if group[0] == "out of stock":
                assert p["stock"] == 0 and p["format"] != "digital", r["id"]
            if group[0] == p["title"]:
                checked += 1
    assert checked >= 150


def test_every_must_state_group_is_grounded(golden: list[dict], store: dict) -> None:
    """Each group is satisfied by the data (product, series, order, policy text) or is a fixed behaviour phrase."""
    fixed = [DECLINE, ESCALATE, NOT_FOUND, ASK_ORDER, *STATUS_WORDS.values()]
    for r in golden:
        e = r["entity"]
        facts: list[str] = []
        if e["asin"]:
            p = store["products"][e["asin"]]
            facts += [p["title"], f"${p['price']:.2f}", p["release_date"], p["age_rating"], p["language"], "digital",
                      "in stock" if p["stock"] > 0 else "out of stock"]
        if e["series"] and e["carried"]:
            first = store["by_series"][e["series"]][0]
            facts += [first["author"], first["publisher"], f"{store['volumes'][e['series']]} volumes",
                      *(q["title"] for q in store["by_series"][e["series"]]), *(f"${q['price']:.2f}" for q in store["by_series"][e["series"]])]
        for oid in {m.upper() for m in ORDER_ID.findall(r["message"])} & set(store["orders"]):
            o = store["orders"][oid]
            facts += [oid] + ([o["tracking_number"]] if o["tracking_number"] else [])
        policy_text = store["policies"][e["policy_id"]]["text"] if e["policy_id"] else ""
        for group in r["must_state"]:
            grounded = (group in fixed or any(_contains(f, group[0]) or _contains(group[0], f) for f in facts if f)
                        or (policy_text and _contains(policy_text, group[0])))
            assert grounded, (r["id"], group)


def test_order_facts_match_the_orders(golden: list[dict], store: dict) -> None:
    n = 0
    for r in golden:
        o = store["orders"].get(r["entity"]["order_id"] or "")
        if o is None or [o["order_id"]] not in r["must_state"] or r["intent"] not in ("order_status", "return_refund", "escalation"):
            continue
        status_groups = [g for g in r["must_state"] if g in STATUS_WORDS.values()]
        if status_groups:
            assert status_groups == [STATUS_WORDS[o["status"]]], r["id"]
            assert ([o["tracking_number"]] in r["must_state"]) == bool(o["tracking_number"]), r["id"]
            n += 1
    assert n >= 50
    statuses = collections.Counter(store["orders"][r["entity"]["order_id"]]["status"] for r in golden
                                   if r["entity"]["order_id"] and r["intent"] == "order_status")
    assert set(statuses) == set(STATUS_WORDS), statuses


def test_policy_aspects_quote_the_policy_text(store: dict) -> None:
    for key, a in ASPECTS.items():
        text = store["policies"][a.policy_id]["text"]
        for group in a.groups:
            assert _contains(text, group[0]), (key, group[0])


def test_expectations_come_with_their_checks(golden: list[dict]) -> None:
    for r in golden:
        x, rid = r["expect"], r["id"]
        if x["blocked"]:
            assert r["must_state"] == [] and set(LEAK) <= set(r["must_not_state"]), rid
        if x["decline"]:
            assert DECLINE in r["must_state"] and "in stock" in r["must_not_state"], rid
        if x["escalate"]:
            assert ESCALATE in r["must_state"], rid
        assert x["escalate"] == (r["intent"] == "escalation"), rid
        if x["ask_order_id"]:
            assert ASK_ORDER in r["must_state"] and "MA-" in r["must_not_state"], rid
        if x["redact"]:  # the raw PII strings are in the message (or are the spelled-out email, written plainly)
            raw = [s for s in r["must_not_state"] if s not in LEAK and s != "MA-" and not s.endswith(", Vol.")]
            digits = re.sub(r"\D", "", r["message"])
            assert raw and all(_contains(r["message"], s) or "@" in s or re.sub(r"\D", "", s) in digits for s in raw), rid
        if r["intent"] == "recommendation":
            assert r["entity"]["genre"], rid
        if r["intent"] == "chitchat" and not x["blocked"]:
            assert r["must_state"] == [], rid
    assert sum(r["expect"]["blocked"] for r in golden) >= 20
    assert {k for r in golden for k in r["expect"]["redact"]} == set(PII_KINDS)


def test_references_satisfy_their_own_checks(golden: list[dict]) -> None:
    for r in golden:
        ref = r["reference"]
        for group in r["must_state"]:
            assert any(_contains(ref, a) for a in group), (r["id"], group, ref)
        for bad in r["must_not_state"]:
            assert not _contains(ref, bad), (r["id"], bad, ref)


# ------------------------------------------------------------------------------------ determinism + CLI
def test_deterministic_and_written_byte_identical(data_dir: pathlib.Path, tmp_path: pathlib.Path, golden: list[dict]) -> None:
    a, b = tmp_path / "a" / "golden.jsonl", tmp_path / "b" / "golden.jsonl"
    report = write_golden(data_dir, a, seed=SEED)
    write_golden(data_dir, b, seed=SEED)
    assert a.read_bytes() == b.read_bytes()
    assert [json.loads(line) for line in a.read_text(encoding="utf-8").splitlines()] == golden
    assert report["records"] == len(golden) and sum(report["intent"].values()) == len(golden)


def test_cli_prints_counts(data_dir: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.jsonl"
    assert golden_main(["--data", str(data_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.exists() and "product_question" in printed and "japanese_script" in printed and "multi_intent" in printed


def test_the_holdout_set_is_written_next_to_the_golden_set_and_shares_no_message(data_dir, tmp_path):
    from model_repository.golden.generate import HOLDOUT, normalise

    report = write_golden(data_dir, tmp_path / "golden.jsonl", seed=SEED)
    holdout = read_jsonl(tmp_path / "holdout.jsonl")
    golden = read_jsonl(tmp_path / "golden.jsonl")
    assert report["holdout"] == len(holdout) >= 0.9 * len(read_jsonl(HOLDOUT))  # nearly every line resolves
    assert {r["source"] for r in holdout} == {"holdout"} and all(r["id"].startswith("ho-") for r in holdout)
    assert not {normalise(r["message"]) for r in holdout} & {normalise(r["message"]) for r in golden}
    assert all(list(r) == RECORD_KEYS for r in holdout)
