"""Rule fast path: high precision on generated and hand-written messages, safe on multi-intent ones."""

from __future__ import annotations

import json
import pathlib
import time

import pytest

from model_repository.datagen import generate_all, read_jsonl
from model_repository.rule_report import evaluate
from server.intents import INTENT_LABELS
from server.stages.rules import RuleMatch, match

pytestmark = pytest.mark.L0

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "intents_handwritten.jsonl"


@pytest.fixture(scope="module")
def generated_test_split(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    paths = generate_all(tmp_path_factory.mktemp("data"), seed=1234)
    return read_jsonl(paths["intents/test"]) + read_jsonl(paths["intents/validation"])


@pytest.fixture(scope="module")
def handwritten() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("text", [
    "hi", "Hello!", "hey there", "thanks!!", "thank you so much", "arigatou 🙏", "Arigatou gozaimasu!",
    "ok thanks, bye", "bye!", "good morning :)", "konnichiwa~", "thx", "see you later", "hahaha",
])
def test_pure_greetings_are_chitchat(text):
    assert match(text) == RuleMatch(intent="chitchat", rule="greeting")


@pytest.mark.parametrize("text", [
    "I want to talk to a human", "can I speak to a real person please", "connect me to an agent",
    "representative please", "agent", "transfer me to customer service", "I need a manager",
    "hi, can I talk to a human about my refund?", "is there a human I can talk to?",
    "ur bot sucks, real person NOW", "何度問い合わせても返事がない。上の人を出して", "人間と話したい",
    "担当者に代わってください", "hablar con una persona por favor",
])
def test_explicit_human_requests_are_escalation(text):
    assert match(text) == RuleMatch(intent="escalation", rule="human_request")


@pytest.mark.parametrize(("text", "order_id"), [
    ("where is my order MA-12345678?", "MA-12345678"),
    ("hi, where is my order MA-12345678", "MA-12345678"),
    ("thanks! also where's my order ma-87654321", "MA-87654321"),
    ("tracking for #MA-11112222 hasn't updated", "MA-11112222"),
    ("status of MA 20481937 pls", "MA-20481937"),
    ("when will MA20481937 arrive", "MA-20481937"),
])
def test_order_ids_with_tracking_words_are_order_status(text, order_id):
    assert match(text) == RuleMatch(intent="order_status", rule="order_lookup", order_id=order_id)


@pytest.mark.parametrize("text", [
    "hi, where is my order",  # no id: the classifier decides
    "hi, is vol 3 of Frieren in stock?",
    "thanks, but I still need a refund",
    "are you a human?",
    "I don't want to talk to a human, just tell me the price",
    "no need to connect me to an agent",
    "I want a manga about a secret agent",
    "MA-12345678",  # an id with no question
    "I want to return MA-12345678, where do I send it",
    "where is my refund for MA-12345678",
    "where is my refnud for MA-12345678",  # typo'd block word
    "MA-12345678 arrived damaged, where is the return label",
    "how much is the box set in MA-12345678 now, has the price dropped",
    "the tracking says delivered but it's the wrong book, order MA-12345678",
    "hello, what's your return policy",
    "thank you for nothing",
    "hi MA-12345678",
    "are you a real person?",  # a question about the bot, not a request
    "この上の人気作品は？",  # 上の人 inside 上の人気 (popular)
    "",
    "   ",
])
def test_rules_abstain_when_unsure(text):
    assert match(text) is None


@pytest.mark.parametrize(("text", "label"), [
    ("hi, where is my order MA-12345678", "order_status"),
    ("thanks! also where's my order MA-12345678", "order_status"),
    ("hello! can you recommend something like Frieren? also where is MA-12345678", "order_status"),
    ("where is MA-12345678?? I want to talk to a manager NOW", "escalation"),
    ("where is MA-12345678, I've had enough, lawyer time", "escalation"),
    ("thanks! I want a refund for MA-12345678, where do I ship it", "return_refund"),
    ("hi! where's my order MA-12345678 and can I get a refund on the damaged one", "return_refund"),
    ("hey, can I get a human? my order MA-12345678 is lost", "escalation"),
    ("hello, how much is shipping? also track MA-12345678", "order_status"),
    ("hi thanks, do you price match? MA-12345678 arrived today", "price_deal"),
    ("real quick, is my order going to come in one box or several? ma-41802719\n"
     "stop sending me marketing emails, i've unsubscribed 5 times, this is illgeal", "escalation"),
])
def test_multi_intent_messages_never_get_a_wrong_rule_label(text, label):
    m = match(text)
    assert m is None or m.intent == label, (text, m)


def test_precision_on_generated_held_out_splits(generated_test_split):
    report = evaluate(generated_test_split)
    assert report["precision"] >= 0.98, report
    assert report["coverage"] > 0.03
    assert set(report["per_intent"]) == set(INTENT_LABELS)


def test_precision_on_handwritten_fixture(handwritten):
    report = evaluate(handwritten)
    assert report["precision"] >= 0.98, report
    assert report["fired"] >= 15  # the rules do decide the obvious ones
    assert {"greeting", "human_request", "order_lookup"} <= set(report["per_rule"])


def test_evaluate_report_shape():
    report = evaluate([("hi", "chitchat"), ("where is MA-12345678", "order_status"),
                       ("hello!", "escalation"), ("is vol 2 in stock", "product_question")])
    assert report["n"] == 4 and report["fired"] == 3 and report["correct"] == 2
    assert report["precision"] == pytest.approx(2 / 3)
    assert report["coverage"] == pytest.approx(3 / 4)
    assert report["per_intent"]["chitchat"]["predicted"] == 2
    assert report["per_intent"]["chitchat"]["precision"] == pytest.approx(0.5)
    assert report["per_intent"]["product_question"]["coverage"] == 0.0
    assert report["per_intent"]["recommendation"]["precision"] is None
    assert evaluate([])["precision"] is None


def test_rules_are_fast(handwritten):
    texts = [r["text"] for r in handwritten] * 5
    start = time.perf_counter()
    for text in texts:
        match(text)
    mean = (time.perf_counter() - start) / len(texts)
    assert mean < 1e-3  # the design budget is < 1 ms per message; typical is tens of microseconds
