"""Token-length chunking of source documents, with a chunk size per source type.

Chunks are cut on token boundaries of the *embedding model's* tokenizer (so a 256-token product chunk is
256 word pieces for MiniLM, not 256 words), preferring to end a chunk at a sentence boundary. Neighbouring
chunks of one document overlap by ``overlap`` tokens so a fact that straddles a cut is whole in one chunk.

Chunk text is always a verbatim slice of the document text (``text[start:end]``), and the chunks of a
document together cover every token of it. Chunk ids are stable: ``"<doc_id>#<n>"``, n counted from 0.
"""

from __future__ import annotations

import bisect
import re
from typing import Any, Iterable, Mapping, Sequence

from server.retrieval.base import Chunk

DEFAULT_SIZES: Mapping[str, int] = {"product": 256, "policy": 512, "review": 128}
DEFAULT_OVERLAP = 32

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) before whitespace, or at a
# line break. The match end is where the next sentence starts.
_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f]+[\"'\u2019\u201d)\]]*\s+|\n\s*")


def chunk_documents(
    docs: Iterable[Mapping[str, Any]],
    tokenizer: Any,
    sizes: Mapping[str, int] = DEFAULT_SIZES,
    overlap: int = DEFAULT_OVERLAP,
) -> list[Chunk]:
    """Split ``documents.jsonl`` records into :class:`Chunk` objects.

    ``docs``: records ``{"doc_id", "source_type", "text", "asin"}``. ``tokenizer``: a
    ``tokenizers.Tokenizer`` or anything whose ``encode(text)`` returns an object with ``offsets``
    (character spans per token; ``ids`` are not needed). Sizes count content tokens (no [CLS]/[SEP]).
    Documents with blank text yield no chunk; an unknown ``source_type`` is a data error (ValueError).
    """
    for source_type, size in sizes.items():
        if size <= 0:
            raise ValueError(f"chunk size for {source_type!r} must be positive, got {size}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    tokenizer = _plain_tokenizer(tokenizer)
    chunks: list[Chunk] = []
    for doc in docs:
        source_type = doc["source_type"]
        if source_type not in sizes:
            raise ValueError(
                f"document {doc.get('doc_id')!r} has source_type {source_type!r}; "
                f"expected one of {sorted(sizes)}"
            )
        text = doc.get("text") or ""
        spans = _token_spans(tokenizer, text)
        asin = doc.get("asin") or None
        for n, (start, end) in enumerate(_windows(text, spans, sizes[source_type], overlap)):
            chunks.append(
                Chunk(
                    chunk_id=f"{doc['doc_id']}#{n}",
                    doc_id=doc["doc_id"],
                    source_type=source_type,
                    text=text[start:end],
                    asin=asin,
                )
            )
    return chunks


def _token_spans(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """Character spans of the content tokens of ``text`` (special and padding tokens dropped)."""
    if not text.strip():
        return []
    try:
        encoding = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:  # a tokenizer whose encode() takes only the text
        encoding = tokenizer.encode(text)
    offsets = encoding.offsets
    special = getattr(encoding, "special_tokens_mask", None) or [0] * len(offsets)
    return [(int(s), int(e)) for (s, e), sp in zip(offsets, special) if not sp and e > s]


def _plain_tokenizer(tokenizer: Any) -> Any:
    """A copy of a ``tokenizers.Tokenizer`` with truncation and padding switched off.

    The MiniLM ``tokenizer.json`` ships with truncation (128) and fixed padding enabled; chunking with it
    as-is would silently drop everything after the 128th token. The caller's tokenizer is not mutated.
    """
    truncation = getattr(tokenizer, "truncation", None)
    padding = getattr(tokenizer, "padding", None)
    if truncation is None and padding is None:
        return tokenizer
    clone = type(tokenizer).from_str(tokenizer.to_str())
    clone.no_truncation()
    clone.no_padding()
    return clone


def _windows(
    text: str, spans: Sequence[tuple[int, int]], size: int, overlap: int
) -> list[tuple[int, int]]:
    """Character ranges of the chunks: at most ``size`` tokens each, ``overlap`` tokens shared."""
    n = len(spans)
    if n == 0:
        return []
    overlap = min(overlap, size // 2)  # guarantees progress of at least size/2 tokens per chunk
    # Token indices at which a new sentence starts (the first token at/after a sentence-end match).
    token_starts = [s for s, _ in spans]
    sentence_starts = sorted(
        {bisect.bisect_left(token_starts, m.end()) for m in _SENTENCE_END.finditer(text)} - {0, n}
    )
    windows: list[tuple[int, int]] = []
    first = 0
    while True:
        last = first + size  # exclusive token index
        if last >= n:
            windows.append((spans[first][0], spans[n - 1][1]))
            return windows
        # Prefer the latest sentence start in the second half of the window as the cut.
        i = bisect.bisect_right(sentence_starts, last) - 1
        if i >= 0 and sentence_starts[i] > first + size // 2:
            last = sentence_starts[i]
        windows.append((spans[first][0], spans[last - 1][1]))
        first = max(last - overlap, first + 1)
