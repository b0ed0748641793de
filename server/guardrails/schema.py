"""Output schema: the answer must be a usable instance of :mod:`server.llm.answer_format`.

Tiers normally hand over answers already parsed (``LLMAnswer.text`` is prose, ``product_asins`` from the
product events). This guardrail catches the rest:

* raw NDJSON in ``text`` (a tier that did not parse): parse it here; repairs / truncation are accepted and
  reported as ``rewritten``; lost content (a terminated line that is not valid JSON, a bad event, an
  unknown event type, prose outside JSON) or an empty answer means ``needs_fallback``;
* a tier that flagged ``answer_format_invalid`` in ``degraded`` (it could not parse its model's output);
* an empty answer.
"""

from __future__ import annotations

from typing import Sequence

from server.guardrails.base import GuardrailAction
from server.guardrails.result import CheckResult
from server.llm import answer_format
from server.llm.answer_format import ParsedAnswer

NAME = "schema"
#: The ``LLMAnswer.degraded`` flag a tier sets when its model's output could not be parsed.
FORMAT_INVALID_FLAG = "answer_format_invalid"


class SchemaGuardrail:
    name = NAME

    def check_parsed(self, parsed: ParsedAnswer, asins: Sequence[str] = ()) -> CheckResult:
        fatal = answer_format.fatal_schema_errors(parsed)
        merged = list(dict.fromkeys([*asins, *parsed.asins]))
        if fatal:
            return CheckResult(
                parsed.text, tuple(merged),
                (GuardrailAction(NAME, "fallback", "unrepairable answer format: " + ";".join(fatal[:4])),),
                needs_fallback=True,
            )
        notes = [e for e in parsed.errors]
        if not parsed.complete:
            notes.append("incomplete")
        actions = ()
        if notes:
            actions = (GuardrailAction(NAME, "rewritten", "repaired answer format: " + ";".join(notes[:4])),)
        return CheckResult(parsed.text, tuple(merged), actions)

    def check_raw(self, raw: str, asins: Sequence[str] = ()) -> CheckResult:
        """Validate a model's raw output (always parsed as NDJSON)."""
        return self.check_parsed(answer_format.parse(raw), asins)

    def check(self, text: str, asins: Sequence[str] = (), degraded: Sequence[str] = ()) -> CheckResult:
        if answer_format.looks_like_ndjson(text):
            return self.check_raw(text, asins)
        if FORMAT_INVALID_FLAG in degraded:
            return CheckResult(
                text, tuple(asins),
                (GuardrailAction(NAME, "fallback", "tier reported an unparsable answer"),), needs_fallback=True,
            )
        if not text.strip():
            return CheckResult(text, tuple(asins), (GuardrailAction(NAME, "fallback", "empty answer"),), True)
        return CheckResult(text, tuple(asins))
