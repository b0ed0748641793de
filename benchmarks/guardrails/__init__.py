"""Guardrail measurements on labelled fixtures."""
