"""Fixtures: a real grpc.aio MangaAssist server on port 0 with the fake backend, catalog and index."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import fakes` from the tests in this folder

from fakes import FakeCatalog, FakeIndex, rule_matcher  # noqa: E402

from server.app import Components, RunningServer, start_server  # noqa: E402
from tests.support.servers import drained_after  # noqa: E402
from server.backends.fake import FakeBackend  # noqa: E402
from server.guardrails.base import PassThroughGuardrails  # noqa: E402
from server.settings import Settings  # noqa: E402


#: The service tests exercise the LLM tiers, their fallbacks and their guardrails, so they route intents to
#: them explicitly (the shipped default answers every intent from the template tier).
LLM_ROUTES = {
    "product_question": "small", "recommendation": "large", "order_status": "template", "return_refund": "small",
    "policy_faq": "small", "price_deal": "template", "chitchat": "template", "escalation": "template",
}


def test_settings(**sections: dict[str, Any]) -> Settings:
    base = {
        "server": {"port": 0, "host": "127.0.0.1", "metrics_port": -1, "health_poll_s": 0.05},
        "routing": {"tiers": LLM_ROUTES},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return Settings().replace(**base)


test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
async def make_server(backend: FakeBackend) -> AsyncIterator[Callable[..., Any]]:
    """``await make_server(**settings_sections, components_overrides...)`` -> RunningServer (stopped after)."""

    async def start(
        *, guardrails=None, tiers=None, index=None, catalog=None, hallucination_score_fn=None, guardrail_settings=None,
        **sections,
    ) -> RunningServer:
        if guardrail_settings:  # the settings section (``guardrails=`` is the Guardrails component)
            sections["guardrails"] = guardrail_settings
        catalog = catalog or FakeCatalog()
        components = Components(
            backend=backend,
            catalog=catalog,
            index=index or FakeIndex(backend=backend),
            guardrails=guardrails or PassThroughGuardrails(),
            tiers=tiers or {},
            rules=rule_matcher(),
            hallucination_score_fn=hallucination_score_fn,
        )
        return await start_server(test_settings(**sections), components, serve_metrics=False)

    async with drained_after(start) as factory:
        yield factory


@pytest.fixture
async def server(make_server) -> RunningServer:
    return await make_server()


@pytest.fixture
async def aclient(server: RunningServer):
    from clients.sdk import AsyncMangaAssistClient

    async with AsyncMangaAssistClient(server.target, timeout=5.0) as client:
        yield client
