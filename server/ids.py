"""The store's identifier formats, defined once: ASINs (``B0`` + 8 alphanumerics) and order ids (``MA-`` + 8 digits).

``*_RE`` match a whole string (validation of data and model output); ``find_*`` search free text. Customers
write order ids loosely ("ma-12345678", "#MA-12345678", "MA12345678", "MA 12345678"); ``find_order_id`` accepts
those and returns the canonical form.
"""

from __future__ import annotations

import re

ASIN_RE = re.compile(r"^B0[A-Z0-9]{8}$")
ORDER_ID_RE = re.compile(r"^MA-\d{8}$")
ASIN_IN_TEXT = re.compile(r"\bB0[A-Z0-9]{8}\b")
ORDER_ID_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])MA[-\s]?(\d{8})(?!\d)", re.IGNORECASE)


def find_order_id(text: str) -> str | None:
    """The first order id in ``text``, canonical (``MA-12345678``), or None."""
    found = ORDER_ID_IN_TEXT.search(text)
    return f"MA-{found.group(1)}" if found else None


def find_order_ids(text: str) -> list[str]:
    return list(dict.fromkeys(f"MA-{m.group(1)}" for m in ORDER_ID_IN_TEXT.finditer(text)))


def find_asins(text: str) -> list[str]:
    return ASIN_IN_TEXT.findall(text)
