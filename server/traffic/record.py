"""One traffic-log row: what an answered Chat/ChatStream turn was, without the customer's raw words.

The message is the input PII guardrail's redaction, redacted once more off the request path (defence in depth:
with the guardrails off, or for a session refused before screening, the pipeline hands over the raw text). The
session id is a hash. The query embedding is kept as a *sketch*: a fixed random projection of the base
embedding to :data:`SKETCH_DIM` floats (Johnson-Lindenstrauss: distances and distribution shape survive, the
text cannot be recovered from 16 numbers), enough for the embedding-drift signal (server/drift).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

SKETCH_DIM = 16
#: The projection's seed: fixed, so every pod and every release sketches into the same space (a new seed
#: would look like drift). Change it only together with the embedder's dimension.
SKETCH_SEED = 20261129


@dataclass(frozen=True)
class TrafficRecord:
    ts: float  # epoch seconds (UTC) when the response went out
    request_id: str
    session_hash: str = ""
    model_versions: Mapping[str, str] = field(default_factory=dict)
    intent: str = ""
    confidence: float = 0.0
    rule_decided: bool = False
    tier: str = ""
    model: str = ""
    timings_ms: Mapping[str, float] = field(default_factory=dict)  # stage -> milliseconds
    degraded: tuple[str, ...] = ()
    guardrails: tuple[str, ...] = ()  # "<guardrail>:<action>", e.g. "pii:redacted"
    message: str = ""  # as redacted by the PII guardrail; never the raw message
    sketch: tuple[float, ...] = ()  # SKETCH_DIM floats; () when no embedding was computed (rule path, outage)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    blocked: bool = False
    stream: bool = False
    feedback: str = ""  # the Feedback RPC's "thumbs_up" | "thumbs_down" | "escalated", once it reports one
    hallucination: float | None = None  # the async scorer's score (0 grounded .. 1 fabricated), once it scored the answer

    def to_tuple(self) -> tuple[Any, ...]:
        """Column values in :data:`COLUMNS` order (mappings and sequences as JSON text, flags as 0/1): one codec
        for SQLite and PostgreSQL."""
        out = []
        for name in COLUMNS:
            value = getattr(self, name)
            if name in JSON_COLUMNS:
                value = json.dumps(dict(value) if isinstance(value, Mapping) else list(value), separators=(",", ":"))
            elif isinstance(value, bool):
                value = int(value)
            out.append(value)
        return tuple(out)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "TrafficRecord":
        values = {name: row[name] for name in COLUMNS}
        for name in JSON_COLUMNS:
            values[name] = json.loads(values[name]) if values[name] else ({} if name in ("model_versions", "timings_ms") else [])
        for name in ("degraded", "guardrails", "sketch"):
            values[name] = tuple(values[name])
        for name in ("rule_decided", "blocked", "stream"):
            values[name] = bool(values[name])
        return cls(**values)


COLUMNS = tuple(TrafficRecord.__dataclass_fields__)
JSON_COLUMNS = ("model_versions", "timings_ms", "degraded", "guardrails", "sketch")


def session_hash(session_id: str) -> str:
    """A stable pseudonym for the session (joins a session's turns without storing its id)."""
    if not session_id:
        return ""
    return hashlib.sha256(b"mangaassist-traffic:" + session_id.encode()).hexdigest()[:16]


class Sketcher:
    """Fixed Gaussian random projection ``dim -> SKETCH_DIM`` of a normalised embedding."""

    def __init__(self, dim: int, out_dim: int = SKETCH_DIM, seed: int = SKETCH_SEED) -> None:
        rng = np.random.default_rng(seed)
        self.matrix = (rng.standard_normal((dim, out_dim)) / np.sqrt(out_dim)).astype(np.float32)

    def __call__(self, vector: Any) -> tuple[float, ...]:
        if vector is None:
            return ()
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.matrix.shape[0]:
            return ()
        norm = float(np.linalg.norm(v))
        if norm > 0:
            v = v / norm
        return tuple(round(float(x), 4) for x in v @ self.matrix)


def actions_of(actions: Sequence[Any]) -> tuple[str, ...]:
    return tuple(f"{getattr(a, 'guardrail', getattr(a, 'name', '?'))}:{getattr(a, 'action', '?')}" for a in actions)
