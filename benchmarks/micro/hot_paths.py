"""The request path's hot pure-Python pieces, each as a zero-argument callable that handles one message per call
(cycling through the 200 hand-written messages), so pytest-benchmark's figures read as time per chat:

* ``rules``: the regex fast path (``server.stages.rules.match``);
* ``guard_input``: PII redaction + prompt-injection scoring of the message (``GuardrailSuite.screen_input``);
* ``guard_output``: every output guardrail on a grounded answer naming a catalog product and its price;
* ``entities``: entity resolution -- which series / volume / edition the message means (``EntityResolver.resolve``);
* ``proto_request``: a ChatRequest parsed from the wire and converted (``convert.chat_from_pb``);
* ``proto_response``: a ChatResult converted and serialised (``convert.chat_to_pb``), three cards, 10 timings.

``cases(catalog)`` builds them on any catalog with the CatalogStore interface (the built
``.build/index/catalog.sqlite`` in the benchmark, the generated test catalog in the smoke test).
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

from benchmarks import speed

Case = Callable[[], Any]


def cases(catalog: Any, messages: list[str] | None = None) -> dict[str, Case]:
    from mangaassist.v1 import mangaassist_pb2 as pb

    from server import convert
    from server.guardrails.suite import GuardrailSuite
    from server.llm.base import LLMAnswer
    from server.retrieval.entities import EntityResolver
    from server.schema import Card, ChatResult
    from server.stages.rules import match

    messages = messages or speed.handwritten_texts()
    suite = GuardrailSuite(catalog)
    resolver = EntityResolver(catalog)
    product = catalog.get_product(sorted(catalog.all_asins())[0])
    answer = LLMAnswer(
        text=f"{product.title} ({product.asin}) is ${product.price:.2f} and {'in stock' if product.stock > 0 else 'sold out'}.",
        tier="template", model="template", product_asins=(product.asin,),
    )
    wire = [pb.ChatRequest(message=m, session_id=f"s{i}", customer_id="c1").SerializeToString() for i, m in enumerate(messages)]
    card = Card(asin=product.asin, title=product.title, price=product.price, currency="USD", in_stock=product.stock > 0)
    result = ChatResult(answer=answer.text, intent="product_question", intent_confidence=0.97, tier="template",
                        model="template", request_id="r" * 32, cards=(card,) * 3,
                        timings=tuple((f"stage{i}", 1.5) for i in range(10)), degraded=("rerank_skipped",))

    def cycling(fn: Callable[[Any], Any], items: list[Any]) -> Case:
        it = itertools.cycle(items)
        return lambda: fn(next(it))

    return {
        "rules": cycling(match, messages),
        "guard_input": cycling(suite.screen_input, messages),
        "guard_output": cycling(lambda m: suite.screen_output(answer, (), m), messages),
        "entities": cycling(resolver.resolve, messages),
        "proto_request": cycling(lambda b: convert.chat_from_pb(pb.ChatRequest.FromString(b), "r1"), wire),
        "proto_response": lambda: convert.chat_to_pb(result).SerializeToString(),
    }


CASE_NAMES = ("rules", "guard_input", "guard_output", "entities", "proto_request", "proto_response")
