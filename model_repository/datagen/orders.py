"""Generated customer orders (``orders.jsonl``): ids ``MA-`` + 8 digits, items drawn from the catalog.

Dates are relative to a fixed reference day (never the wall clock) so the output depends on the seed only.
"""

from __future__ import annotations

import random
import string
from datetime import date, timedelta
from typing import Any, Sequence

N_ORDERS = 500
REFERENCE_DAY = date(2025, 6, 1)
STATUSES = ("processing", "shipped", "out_for_delivery", "delivered", "cancelled")
_STATUS_WEIGHTS = (0.15, 0.3, 0.08, 0.4, 0.07)
CARRIERS = ("USPS", "UPS", "FedEx")


def _tracking(rng: random.Random, carrier: str) -> str:
    if carrier == "UPS":
        return "1Z" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
    if carrier == "FedEx":
        return "".join(rng.choice(string.digits) for _ in range(12))
    return "9400" + "".join(rng.choice(string.digits) for _ in range(18))


def new_order_id(rng: random.Random) -> str:
    return f"MA-{rng.randrange(10_000_000, 100_000_000)}"


def generate_orders(rng: random.Random, asins: Sequence[str], n: int = N_ORDERS) -> list[dict[str, Any]]:
    """``n`` orders sorted by ``order_id``; delivered/cancelled ones are older than in-flight ones."""
    seen: set[str] = set()
    orders: list[dict[str, Any]] = []
    while len(orders) < n:
        order_id = new_order_id(rng)
        if order_id in seen:
            continue
        seen.add(order_id)
        status = rng.choices(STATUSES, weights=_STATUS_WEIGHTS)[0]
        age = rng.randrange(12, 120) if status in ("delivered", "cancelled") else rng.randrange(0, 12)
        placed = REFERENCE_DAY - timedelta(days=age)
        eta = placed + timedelta(days=rng.randrange(2, 10))
        carrier = rng.choice(CARRIERS)
        shipped = status in ("shipped", "out_for_delivery", "delivered")
        orders.append({
            "order_id": order_id,
            "status": status,
            "carrier": carrier if shipped else None,
            "tracking_number": _tracking(rng, carrier) if shipped else None,
            "items": sorted(rng.sample(list(asins), k=rng.choice((1, 1, 2, 2, 3, 4)))),
            "placed_at": placed.isoformat(),
            "eta": eta.isoformat(),
        })
    orders.sort(key=lambda o: o["order_id"])
    return orders
