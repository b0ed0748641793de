"""Synchronous guardrails: input screening (PII, prompt injection) and output repair (schema, leak, PII,
competitors, ASINs, prices). :class:`GuardrailSuite` is the implementation the pipeline uses."""

from server.guardrails.catalog import InMemoryCatalog
from server.guardrails.suite import GuardrailSuite

__all__ = ["GuardrailSuite", "InMemoryCatalog"]
