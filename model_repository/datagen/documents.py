"""Retrievable documents (``documents.jsonl``) built from the catalog and the policies.

Doc ids: ``product:<asin>`` (structured facts + description), ``review:<asin>`` (review summary, with the
product's identity so a review is findable by title) and ``policy:<policy_id>`` (one policy section).
"""

from __future__ import annotations

from typing import Any, Sequence

FORMAT_NAMES = {"tankobon": "tankobon (paperback)", "omnibus": "omnibus", "box_set": "box set", "digital": "digital"}


def product_doc_id(asin: str) -> str:
    return f"product:{asin}"


def review_doc_id(asin: str) -> str:
    return f"review:{asin}"


def policy_doc_id(policy_id: str) -> str:
    return f"policy:{policy_id}"


def product_text(p: dict[str, Any]) -> str:
    volume = "" if p["volume"] is None else f"Volume: {p['volume']}\n"
    availability = "digital, always available" if p["format"] == "digital" else (
        f"{p['stock']} in stock" if p["stock"] > 0 else "out of stock")
    return (
        f"Title: {p['title']}\nSeries: {p['series']}\n{volume}Author: {p['author']}\n"
        f"Publisher: {p['publisher']}\nFormat: {FORMAT_NAMES[p['format']]}\nLanguage: {p['language']}\n"
        f"Age rating: {p['age_rating']}\nGenres: {', '.join(p['genres'])}\nPrice: ${p['price']:.2f}\n"
        f"Availability: {availability}\nRelease date: {p['release_date']}\nASIN: {p['asin']}\n\n"
        f"{p['description']}"
    )


def review_text(p: dict[str, Any]) -> str:
    return f"Reader reviews of {p['title']} ({FORMAT_NAMES[p['format']]}, {p['language']}): {p['review_summary']}"


def generate_documents(
    products: Sequence[dict[str, Any]], policies: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """All documents sorted by ``doc_id``."""
    docs: list[dict[str, Any]] = []
    for p in products:
        docs.append({"doc_id": product_doc_id(p["asin"]), "source_type": "product", "text": product_text(p),
                     "asin": p["asin"]})
        docs.append({"doc_id": review_doc_id(p["asin"]), "source_type": "review", "text": review_text(p),
                     "asin": p["asin"]})
    for pol in policies:
        docs.append({"doc_id": policy_doc_id(pol["policy_id"]), "source_type": "policy",
                     "text": f"{pol['title']}\n{pol['text']}", "asin": None})
    docs.sort(key=lambda d: d["doc_id"])
    return docs
