"""Stage 1b: validate what the caller sent. Violations are the caller's fault -> INVALID_ARGUMENT.

(Stage 1a, admission -- the concurrency cap -- runs just before this, in ``server/admission.py``; oversized messages
never get here: gRPC rejects them with RESOURCE_EXHAUSTED from ``server.max_message_bytes``.)
"""

from __future__ import annotations

from typing import Sequence

from server.errors import InvalidRequest
from server.settings import ServerSettings


def validate_text(text: str, *, field: str, limits: ServerSettings) -> str:
    """The text stripped of surrounding whitespace; rejects empty, over-long and NUL-containing text."""
    if len(text) > limits.max_text_chars:
        raise InvalidRequest(f"{field} has {len(text)} characters; the limit is {limits.max_text_chars}")
    if "\x00" in text:
        raise InvalidRequest(f"{field} contains a NUL character")
    stripped = text.strip()
    if not stripped:
        raise InvalidRequest(f"{field} is empty")
    return stripped


def validate_customer_id(customer_id: str, *, limits: ServerSettings) -> str:
    """An opaque account id: empty (anonymous) or up to ``max_customer_id_chars`` printable characters."""
    if len(customer_id) > limits.max_customer_id_chars:
        raise InvalidRequest(f"customer_id has {len(customer_id)} characters; the limit is {limits.max_customer_id_chars}")
    if customer_id and (not customer_id.isprintable() or customer_id != customer_id.strip()):
        raise InvalidRequest("customer_id must be printable, without surrounding whitespace")
    return customer_id


def validate_texts(texts: Sequence[str], *, limits: ServerSettings) -> list[str]:
    if not texts:
        raise InvalidRequest("texts is empty")
    if len(texts) > limits.max_classify_texts:
        raise InvalidRequest(f"{len(texts)} texts in one call; the limit is {limits.max_classify_texts}")
    return [validate_text(t, field=f"texts[{i}]", limits=limits) for i, t in enumerate(texts)]


def validate_top_k(top_k: int, *, limits: ServerSettings) -> int:
    if top_k == 0:
        return limits.default_top_k
    if not 1 <= top_k <= limits.max_top_k:
        raise InvalidRequest(f"top_k must be in [1, {limits.max_top_k}], got {top_k}")
    return top_k
