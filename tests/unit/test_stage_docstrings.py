"""Stage numbers agree: ``Pipeline._turn`` numbers its stages in comments (``# 2c the follow-up``), one line per
stage, and every module of server/stages/ opens its docstring with the stage(s) it implements (``Stage 2c: ...``,
``Stages 4b and 5a: ...``). Read from the source (ast + tokenize), nothing imported."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

pytestmark = pytest.mark.L0

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "server" / "pipeline.py"
STAGES = ROOT / "server" / "stages"

#: stage module -> the word the pipeline's comment for each of its stages uses
STAGE_WORDS = {
    "validation": ("validation",), "guard": ("guardrail", "guardrail"), "followup": ("follow-up",), "rules": ("rules",),
    "classify": ("classify",), "embed": ("embed", "adapter"), "retrieve": ("retrieve",), "rerank": ("rerank",),
    "entities": ("facts",), "routing": ("routing",), "answer": ("answer",),
}
#: modules of server/stages/ that are not stages (helpers of one)
NOT_STAGES = {"__init__", "relation", "relation_data"}

_LABEL = r"\d+[a-z]?"


def _key(label: str) -> tuple[int, str]:
    m = re.fullmatch(r"(\d+)([a-z]?)", label)
    assert m, label
    return int(m.group(1)), m.group(2)


def turn_stages() -> list[tuple[str, str]]:
    """(label, name) of every numbered comment in ``Pipeline._turn``, in source order."""
    source = PIPELINE.read_text(encoding="utf-8")
    turn = next(n for n in ast.walk(ast.parse(source))
                if isinstance(n, ast.AsyncFunctionDef | ast.FunctionDef) and n.name == "_turn")
    body = "\n".join(source.splitlines()[turn.lineno - 1:turn.end_lineno])
    stages = []
    for tok in tokenize.generate_tokens(io.StringIO(body).readline):
        if tok.type != tokenize.COMMENT:
            continue
        text = tok.string.lstrip("#").strip()
        if not re.match(_LABEL + r"\b", text):
            continue
        for part in re.split(r", (?=" + _LABEL + r"\b)", text):
            label, _, name = part.partition(" ")
            stages.append((label, name))
    return stages


def stage_labels(module: Path) -> list[str]:
    """The labels a stage module's docstring opens with: ``Stage 3:`` -> ["3"], ``Stages 4b and 5a:`` -> ["4b", "5a"]."""
    doc = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8"))) or ""
    m = re.match(rf"Stages? ({_LABEL}(?:(?:, | and ){_LABEL})*):", doc)
    assert m, f"{module.relative_to(ROOT)}: the docstring does not open with 'Stage <n>: ...' ({doc[:60]!r})"
    return re.findall(_LABEL, m.group(1))


def test_turn_numbers_its_stages_in_order() -> None:
    stages = turn_stages()
    labels = [label for label, _ in stages]
    assert len(stages) >= 15, stages
    assert [_key(x) for x in labels] == sorted({_key(x) for x in labels}), f"out of order or repeated: {labels}"


def test_every_stage_module_states_its_place_in_turn() -> None:
    names = dict(turn_stages())
    modules = {p.stem: p for p in STAGES.glob("*.py")}
    assert set(modules) - NOT_STAGES == set(STAGE_WORDS), "a stage module was added or removed: list it in STAGE_WORDS"
    wrong = []
    for stem, words in STAGE_WORDS.items():
        labels = stage_labels(modules[stem])
        if len(labels) != len(words):
            wrong.append(f"{stem}: docstring names stages {labels}, expected {len(words)} ({', '.join(words)})")
            continue
        for label, word in zip(labels, words):
            if word not in names.get(label, ""):
                wrong.append(f"{stem}: docstring says stage {label}, which _turn names {names.get(label)!r}, not {word!r}")
    assert not wrong, "\n".join(wrong)
