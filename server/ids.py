"""The store's identifier formats, defined once: ASINs (``B0`` + 8 alphanumerics) and order ids (``MA-`` + 8 digits).

``*_RE`` match a whole string (validation of data and model output); ``find_*`` search free text. Customers
write order ids loosely ("ma-12345678", "#MA-12345678", "MA12345678", "MA 12345678"); ``find_order_id`` accepts
those and returns the canonical form.
"""

from __future__ import annotations

import re

#: The shapes, for patterns that embed them (e.g. PII's "this id is the store's, not the customer's").
ASIN = r"B0[A-Z0-9]{8}"
ORDER_ID = r"MA-\d{8}"
#: An order id as customers write it (case aside): ``MA-12345678``, ``MA 12345678``, ``MA12345678``; group 1: the digits.
ORDER_ID_LOOSE = r"MA[-\s]?(\d{8})"

ASIN_RE = re.compile(rf"^{ASIN}$")
ORDER_ID_RE = re.compile(rf"^{ORDER_ID}$")
ASIN_IN_TEXT = re.compile(rf"\b{ASIN}\b")
ORDER_ID_IN_TEXT = re.compile(rf"(?<![A-Za-z0-9]){ORDER_ID_LOOSE}(?!\d)", re.IGNORECASE)


def find_order_id(text: str) -> str | None:
    """The first order id in ``text``, canonical (``MA-12345678``), or None."""
    found = ORDER_ID_IN_TEXT.search(text)
    return f"MA-{found.group(1)}" if found else None


def find_order_ids(text: str) -> list[str]:
    return list(dict.fromkeys(f"MA-{m.group(1)}" for m in ORDER_ID_IN_TEXT.finditer(text)))


def find_asins(text: str) -> list[str]:
    return ASIN_IN_TEXT.findall(text)
