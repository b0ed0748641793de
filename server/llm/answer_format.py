"""The structured answer format every LLM tier produces, built so that streaming cannot break it.

An answer is NDJSON: one complete JSON object per line, each an *event*::

    {"type": "text", "text": "Chainsaw Man Vol. 1 (B0CHAINSW1) is $9.99 and in stock."}
    {"type": "product", "asin": "B0CHAINSW1"}
    {"type": "end"}

Why line-oriented: a stream cut at *any* byte is still a valid prefix. Every newline-terminated line is a
whole event; an unterminated last line is simply dropped (never "repaired", so a half sentence never
reaches a customer). ``end`` marks a complete answer; its absence means the answer was truncated.

Text events are paragraphs/bullets: the answer text is their ``text`` fields joined with ``"\\n"``.
Product events carry the ASINs the pipeline turns into product cards (the ASIN guardrail checks them).

Models are imperfect, so :func:`parse` repairs the common *terminated*-line mistakes (code fences,
trailing commas, smart quotes, a missing closing brace) and records every repair or drop in ``errors``;
:func:`schema_errors` says which of those make the answer unusable (the schema guardrail's input).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Iterable, Union

from server.ids import ASIN_RE

EVENT_TYPES = ("text", "product", "end")

#: Instructions for the system prompt (kept here so the parser and the prompt never drift apart).
FORMAT_INSTRUCTIONS = """\
Answer format (mandatory): write NDJSON, one JSON object per line, nothing else (no code fences, no prose
outside JSON). Allowed objects:
{"type": "text", "text": "<one paragraph or bullet of the answer for the customer>"}
{"type": "product", "asin": "<ASIN of a product you recommend or describe, copied from the context>"}
{"type": "end"}
Write the text lines first, then one product line per product you mention, and finish with the end line."""

_FENCE_RE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*$")
_TRAILING_COMMA_RE = re.compile(r",\s*([}\]])")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"'})


@dataclass(frozen=True)
class TextEvent:
    text: str
    type: str = "text"


@dataclass(frozen=True)
class ProductEvent:
    asin: str
    note: str = ""
    type: str = "product"


@dataclass(frozen=True)
class EndEvent:
    type: str = "end"


Event = Union[TextEvent, ProductEvent, EndEvent]


@dataclass(frozen=True)
class ParsedAnswer:
    """What a model's NDJSON output means once parsed.

    ``errors`` is a tuple of short codes, ``"<code>:<line number>[:detail]"``:
    ``repaired`` (a terminated line fixed up), ``invalid_json`` (a terminated line dropped),
    ``truncated`` (unterminated last line dropped), ``unknown_type`` / ``bad_event`` (event dropped),
    ``after_end`` (content after the end event ignored), ``fence`` (code-fence line ignored),
    ``not_ndjson`` (no line was JSON at all).
    """

    text: str
    asins: tuple[str, ...]
    complete: bool
    errors: tuple[str, ...] = ()
    events: tuple[Event, ...] = field(default=(), repr=False)

    @property
    def repaired(self) -> int:
        return sum(1 for e in self.errors if e.startswith("repaired:"))


def encode(events: Iterable[Event]) -> str:
    """Serialise events as NDJSON (templates and tests use this to produce well-formed answers)."""
    lines = []
    for ev in events:
        if isinstance(ev, TextEvent):
            lines.append(json.dumps({"type": "text", "text": ev.text}, ensure_ascii=False))
        elif isinstance(ev, ProductEvent):
            obj = {"type": "product", "asin": ev.asin}
            if ev.note:
                obj["note"] = ev.note
            lines.append(json.dumps(obj, ensure_ascii=False))
        else:
            lines.append('{"type": "end"}')
    return "".join(line + "\n" for line in lines)


def render(text: str, asins: Iterable[str] = (), *, end: bool = True) -> str:
    """Convenience: an answer's paragraphs (split on newlines) + product events + end, as NDJSON."""
    events: list[Event] = [TextEvent(p) for p in text.split("\n") if p.strip()]
    events += [ProductEvent(a) for a in asins]
    if end:
        events.append(EndEvent())
    return encode(events)


def _try_load(line: str) -> object:
    return json.loads(line)


def _repair(line: str) -> object | None:
    """Best-effort fixes for a *terminated* line the model clearly finished writing."""
    candidates = []
    fixed = line.translate(_SMART_QUOTES)
    fixed = _TRAILING_COMMA_RE.sub(r"\1", fixed)
    candidates.append(fixed)
    if fixed.count("{") > fixed.count("}"):
        candidates.append(fixed + "}" * (fixed.count("{") - fixed.count("}")))
    if '"' not in fixed and "'" in fixed:  # python-style dict
        candidates.append(fixed.replace("'", '"'))
    for cand in candidates:
        try:
            return json.loads(cand)
        except ValueError:
            continue
    return None


def _to_event(obj: object) -> tuple[Event | None, str | None]:
    """(event, error) for one decoded JSON value."""
    if not isinstance(obj, dict):
        return None, "bad_event:not_an_object"
    kind = obj.get("type")
    if kind == "text":
        text = obj.get("text")
        if not isinstance(text, str):
            return None, "bad_event:text_without_text"
        return TextEvent(text), None
    if kind == "product":
        asin = obj.get("asin")
        if not isinstance(asin, str) or not asin.strip():
            return None, "bad_event:product_without_asin"
        note = obj.get("note")
        return ProductEvent(asin.strip().upper(), note if isinstance(note, str) else ""), None
    if kind == "end":
        return EndEvent(), None
    return None, f"unknown_type:{str(kind)[:32]}"


class StreamParser:
    """Incremental parser: feed raw deltas as they arrive, get whole events back.

    Only newline-terminated lines become events, so every event a caller sees is final. ``close()``
    parses what is left (strictly: an unterminated line is dropped unless it is already valid JSON)
    and returns the whole :class:`ParsedAnswer`.
    """

    def __init__(self) -> None:
        self._buf = ""
        self._line_no = 0
        self._events: list[Event] = []
        self._errors: list[str] = []
        self._ended = False
        self._json_lines = 0
        self._non_json_lines = 0
        self._closed: ParsedAnswer | None = None

    @property
    def ended(self) -> bool:
        return self._ended

    def feed(self, delta: str) -> list[Event]:
        if self._closed is not None:
            raise ValueError("StreamParser.feed() after close()")
        self._buf += delta
        out: list[Event] = []
        while True:
            nl = self._buf.find("\n")
            if nl < 0:
                break
            line, self._buf = self._buf[:nl], self._buf[nl + 1 :]
            ev = self._line(line, terminated=True)
            if ev is not None:
                out.append(ev)
        return out

    def close(self) -> ParsedAnswer:
        if self._closed is not None:
            return self._closed
        tail, self._buf = self._buf, ""
        if tail.strip():
            self._line(tail, terminated=False)
        errors = list(self._errors)
        if self._json_lines == 0 and self._non_json_lines > 0:
            errors.append("not_ndjson:0")
        texts = [e.text for e in self._events if isinstance(e, TextEvent)]
        asins: list[str] = []
        for e in self._events:
            if isinstance(e, ProductEvent) and e.asin not in asins:
                asins.append(e.asin)
        self._closed = ParsedAnswer(
            text="\n".join(t.strip() for t in texts if t.strip()),
            asins=tuple(asins),
            complete=self._ended,
            errors=tuple(errors),
            events=tuple(self._events),
        )
        return self._closed

    def _line(self, raw: str, *, terminated: bool) -> Event | None:
        self._line_no += 1
        n = self._line_no
        line = raw.strip()
        if not line:
            return None
        if _FENCE_RE.match(line):
            self._errors.append(f"fence:{n}")
            return None
        if self._ended:
            self._errors.append(f"after_end:{n}")
            return None
        try:
            obj = _try_load(line)
        except ValueError:
            obj = None
            if not terminated:
                # A cut-off line: never repair it, a half sentence must not reach the customer.
                self._errors.append(f"truncated:{n}")
                if line.startswith("{"):
                    self._json_lines += 1
                else:
                    self._non_json_lines += 1
                return None
            obj = _repair(line) if line.startswith("{") or line.startswith("'") else None
            if obj is None:
                if line.startswith("{"):
                    self._json_lines += 1
                    self._errors.append(f"invalid_json:{n}")
                else:
                    self._non_json_lines += 1
                    self._errors.append(f"invalid_json:{n}:prose")
                return None
            self._errors.append(f"repaired:{n}")
        self._json_lines += 1
        event, err = _to_event(obj)
        if err is not None:
            self._errors.append(f"{err.split(':', 1)[0]}:{n}:{err.split(':', 1)[1]}")
            return None
        assert event is not None
        if isinstance(event, EndEvent):
            self._ended = True
        self._events.append(event)
        return event


def parse(text: str) -> ParsedAnswer:
    """Parse a whole (possibly truncated) answer."""
    parser = StreamParser()
    parser.feed(text)
    return parser.close()


#: Error codes that mean content was lost or the model ignored the format (cannot be repaired).
_FATAL = ("invalid_json", "bad_event", "not_ndjson", "unknown_type")


def schema_errors(parsed: ParsedAnswer) -> list[str]:
    """Problems that make an answer unusable as-is, in a stable order.

    ``empty_text``: no text event with content; ``not_ndjson`` / ``invalid_json:<n>`` /
    ``bad_event:<n>``: a line the parser had to drop (content lost); ``unknown_type:<n>:<t>``: an event
    type outside :data:`EVENT_TYPES`; ``bad_asin:<asin>``: a product event whose ASIN is malformed;
    ``incomplete``: no end event (truncated). Repairs and dropped fences are not errors.
    """
    errs: list[str] = []
    if not parsed.text.strip():
        errs.append("empty_text")
    for e in parsed.errors:
        code = e.split(":", 1)[0]
        if code in _FATAL:
            errs.append(e)
    for asin in parsed.asins:
        if not ASIN_RE.match(asin):
            errs.append(f"bad_asin:{asin}")
    if not parsed.complete:
        errs.append("incomplete")
    return errs


def fatal_schema_errors(parsed: ParsedAnswer) -> list[str]:
    """The subset of :func:`schema_errors` that no repair can fix (content lost or missing)."""
    return [
        e
        for e in schema_errors(parsed)
        if e == "empty_text" or e.split(":", 1)[0] in _FATAL
    ]


def looks_like_ndjson(text: str) -> bool:
    """True when ``text`` is raw model output in this format rather than already-parsed prose."""
    stripped = text.lstrip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1].lstrip() if "\n" in stripped else ""
    return stripped.startswith("{") and '"type"' in stripped[:200].replace("'", '"')
