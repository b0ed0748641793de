"""The template tier (grounded answers per intent) and the large -> small -> template fallback chain."""

from __future__ import annotations

import asyncio

import pytest

from server.errors import TierUnavailable
from server.llm.base import LLMAnswer, LLMRequest
from server.llm.router import TierRouter
from server.llm.templates import BLOCKED, Facts, TemplateTier, find_order_id
from server.retrieval.base import Chunk, Product, ScoredChunk

pytestmark = pytest.mark.L0

PRODUCT = Product(
    asin="B0CHAINSW1", title="Chainsaw Man, Vol. 1", series="Chainsaw Man", volume=1, author="Tatsuki Fujimoto",
    publisher="VIZ", format="tankobon", language="English", age_rating="Older Teen", price=9.99, stock=0,
)
ORDER = {"status": "shipped", "carrier": "UPS", "tracking_number": "1Z9", "eta": "2024-05-06"}
POLICY = ScoredChunk(Chunk("p1", "policy-returns", "policy", "Returns are accepted within 30 days. More text."), 0.9)


def req(intent: str, message: str = "hi", context=(), timeout_s: float = 1.0) -> LLMRequest:
    return LLMRequest(intent=intent, user_message=message, context=tuple(context), temperature=0.1,
                      max_tokens=64, timeout_s=timeout_s)


@pytest.fixture
def template() -> TemplateTier:
    return TemplateTier()


async def test_template_answers_are_grounded(template):
    a = await template.generate(req("product_question"), Facts(products=(PRODUCT,)))
    assert "$9.99" in a.text and "out of stock" in a.text and a.product_asins == ("B0CHAINSW1",)
    assert a.tier == "template"
    mine = Facts(customer_id="C-1", orders={"MA-20481937": ORDER})  # as the facts stage looked it up
    a = await template.generate(req("order_status", "where is MA-20481937"), mine)
    assert "UPS" in a.text and "1Z9" in a.text and "2024-05-06" in a.text
    a = await template.generate(req("order_status", "where is it"), Facts(order_id="MA-00000000", customer_id="C-1"))
    assert "couldn't find" in a.text and "on your account" in a.text
    a = await template.generate(req("order_status", "where is MA-20481937"), Facts())  # anonymous
    assert "signed-in" in a.text and "UPS" not in a.text
    a = await template.generate(req("order_status", "where is my order"))
    assert "order number" in a.text
    a = await template.generate(req("return_refund", context=[POLICY]))
    assert "30 days" in a.text
    a = await template.generate(req("policy_faq"))
    assert "human" in a.text
    a = await template.generate(req("escalation"))
    assert "human agent" in a.text
    assert "welcome" in (await template.generate(req("chitchat", "thanks!"))).text
    a = await template.generate(req("recommendation"), Facts(products=(PRODUCT,)))
    assert "Chainsaw Man" in a.text and a.product_asins == ("B0CHAINSW1",)
    a = await template.generate(req("price_deal"))
    assert "couldn't find" in a.text
    a = await template.generate(req(""))  # classifier down, nothing known
    assert "try again" in a.text
    assert template.blocked().text == BLOCKED


def test_find_order_id():
    assert find_order_id("status of ma-12345678 please") == "MA-12345678"
    assert find_order_id("MA-1234") is None


class ScriptedTier:
    def __init__(self, name, *, fail=False, delay=0.0, ndjson=None):
        self.name, self.fail, self.delay = name, fail, delay
        self.model = f"{name}-model"
        self.ndjson = ndjson or '{"type": "text", "text": "From ' + name + '."}\n{"type": "end"}\n'
        self.calls = 0

    async def generate(self, request):
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise TierUnavailable("throttled", tier=self.name)
        return LLMAnswer(text=f"From {self.name}.", tier=self.name, model=self.model)

    async def stream(self, request):
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise TierUnavailable("throttled", tier=self.name)
        for i in range(0, len(self.ndjson), 7):
            yield self.ndjson[i : i + 7]


async def test_router_uses_the_routed_tier(template):
    router = TierRouter(template, {"small": ScriptedTier("small"), "large": ScriptedTier("large")})
    answer, degraded = await router.generate("large", req("recommendation"), Facts())
    assert answer.tier == "large" and not degraded
    assert router.available == ("large", "small", "template")


async def test_router_falls_back_step_by_step(template):
    large, small = ScriptedTier("large", fail=True), ScriptedTier("small", fail=True)
    router = TierRouter(template, {"small": small, "large": large})
    answer, degraded = await router.generate("large", req("recommendation"), Facts(products=(PRODUCT,)))
    assert answer.tier == "template"
    assert degraded == ["tier_fallback:large->small", "tier_fallback:small->template"]
    router = TierRouter(template, {"small": ScriptedTier("small")})
    answer, degraded = await router.generate("large", req("recommendation"), Facts())
    assert answer.tier == "small" and degraded == ["tier_fallback:large->small"]


async def test_router_absent_tiers_fall_back_to_template(template):
    router = TierRouter(template)
    answer, degraded = await router.generate("small", req("chitchat", "hello"), Facts())
    assert answer.tier == "template" and degraded == ["tier_fallback:small->template"]
    assert router.available == ("template",)


async def test_router_bounds_a_tier_that_ignores_its_timeout(template):
    slow = ScriptedTier("small", delay=5.0)
    router = TierRouter(template, {"small": slow})
    answer, degraded = await asyncio.wait_for(
        router.generate("small", req("chitchat", timeout_s=0.05), Facts()), timeout=2
    )
    assert answer.tier == "template" and degraded == ["tier_fallback:small->template"]


async def test_router_stream_parses_ndjson_and_falls_back_before_first_delta(template):
    ndjson = ('{"type": "text", "text": "Para one."}\n{"type": "product", "asin": "B0CHAINSW1"}\n'
              '{"type": "text", "text": "Para two."}\n{"type": "end"}\n')
    router = TierRouter(template, {"small": ScriptedTier("small", ndjson=ndjson), "large": ScriptedTier("large", fail=True)})
    items = [i async for i in router.stream("large", req("recommendation"), Facts())]
    pieces = [i for i in items if isinstance(i, str)]
    answer, degraded = items[-1]
    assert pieces == ["Para one.\n", "Para two.\n"]
    assert answer.tier == "small" and answer.text == "Para one.\nPara two." and answer.product_asins == ("B0CHAINSW1",)
    assert degraded == ["tier_fallback:large->small"]
