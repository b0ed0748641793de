"""Stage 6b: intent -> answer tier ("template" | "small" | "large"), temperature and max_tokens."""

from __future__ import annotations

from dataclasses import dataclass

from server.settings import RoutingSettings


@dataclass(frozen=True)
class Route:
    intent: str
    tier: str
    temperature: float
    max_tokens: int


def route(intent: str, confidence: float, routing: RoutingSettings) -> Route:
    """The configured route; an unknown intent (classifier down) or a low-confidence one gets the template."""
    if not intent or confidence < routing.min_confidence:
        return Route(intent=intent, tier="template", temperature=0.0, max_tokens=128)
    return Route(
        intent=intent,
        tier=routing.tiers[intent],
        temperature=routing.temperatures[intent],
        max_tokens=routing.max_tokens[intent],
    )
