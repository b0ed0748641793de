"""Text units the output guardrails remove surgically: a bullet line, or a sentence inside a paragraph."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

_BULLET_RE = re.compile(r"^\s*(?:[-*\u2022]|\d{1,2}[.)])\s+")
# A sentence ends at . ! ? (plus closing quotes/brackets) followed by whitespace.
_SENT_END_RE = re.compile(r"[.!?]+[\"')\]\u201d]*\s+")
_ABBREV = {
    "vol", "vols", "no", "nos", "vs", "etc", "e.g", "i.e", "mr", "mrs", "ms", "dr", "st", "approx", "jr",
    "ed", "pp", "p", "ch", "inc", "ltd", "co", "ave", "rd", "blvd",
}
_WORD_RE = re.compile(r"[A-Za-z\u00C0-\u024F\u3040-\u30FF\u4E00-\u9FFF]{2,}")


@dataclass(frozen=True)
class Unit:
    start: int
    end: int
    text: str
    bullet: bool


def units(text: str) -> list[Unit]:
    """Split into removable units. Each unit's span covers its trailing whitespace/newline."""
    out: list[Unit] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        line_start = pos
        pos += len(line)
        if not line.strip():
            if out:  # blank line: attach to the previous unit so removal keeps layout tidy
                prev = out[-1]
                out[-1] = Unit(prev.start, pos, text[prev.start : pos], prev.bullet)
            else:
                out.append(Unit(line_start, pos, line, False))
            continue
        if _BULLET_RE.match(line):
            out.append(Unit(line_start, pos, line, True))
            continue
        start = 0
        for m in _SENT_END_RE.finditer(line):
            before = line[start : m.start()].rstrip()
            last_word = re.split(r"[\s(]", before)[-1].lower().rstrip(".") if before else ""
            nxt = line[m.end() : m.end() + 1]
            if last_word in _ABBREV or (len(last_word) == 1 and last_word.isalpha()):
                continue
            if nxt and nxt.islower():
                continue
            out.append(Unit(line_start + start, line_start + m.end(), line[start : m.end()], False))
            start = m.end()
        if start < len(line):
            out.append(Unit(line_start + start, pos, line[start:], False))
    return out


def unit_at(all_units: list[Unit], offset: int) -> Unit:
    for u in all_units:
        if u.start <= offset < u.end:
            return u
    return all_units[-1]


def remove_units(text: str, drop: Callable[[Unit], bool]) -> tuple[str, list[Unit]]:
    """Remove every unit ``drop`` selects; return the tidied text and the removed units."""
    kept, removed = [], []
    for u in units(text):
        (removed if drop(u) else kept).append(u)
    if not removed:
        return text, []
    out = "".join(u.text for u in kept)
    out = re.sub(r"[ \t]+\n", "\n", out)
    out = re.sub(r"\n{3,}", "\n\n", out)
    out = re.sub(r"  +", " ", out)
    return out.strip(), removed


def strip_dangling_leadins(text: str) -> str:
    """Drop a trailing lead-in line ("Here are some picks:") whose list was entirely removed."""
    lines = text.rstrip().split("\n")
    while lines and lines[-1].strip().endswith(":"):
        lines.pop()
    return "\n".join(lines).strip()


def meaningful(text: str, min_words: int = 4) -> bool:
    """Whether enough of an answer survives to be worth sending."""
    return len(_WORD_RE.findall(strip_dangling_leadins(text))) >= min_words
