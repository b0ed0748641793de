"""Retrieval contracts shared by the index backends (FAISS, Milvus), the pipeline and the LLM tiers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class Chunk:
    """One retrievable piece of a source document."""

    chunk_id: str
    doc_id: str
    source_type: str  # "product" | "policy" | "review"
    text: str
    asin: str | None = None  # set for product and review chunks


@dataclass(frozen=True)
class ScoredChunk:
    chunk: Chunk
    score: float  # vector similarity, or the reranker score when reranked
    reranked: bool = False


class VectorIndex(Protocol):
    """A nearest-neighbour index over L2-normalised chunk vectors (inner product == cosine)."""

    dim: int

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None: ...

    def search(self, query: np.ndarray, k: int) -> list[ScoredChunk]: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class Product:
    """A catalog row as the store holds it (the guardrails' source of truth for IDs and prices)."""

    asin: str
    title: str
    series: str
    volume: int | None
    author: str
    publisher: str
    format: str
    language: str
    age_rating: str
    genres: tuple[str, ...] = field(default_factory=tuple)
    price: float = 0.0
    stock: int = 0
    release_date: str = ""
