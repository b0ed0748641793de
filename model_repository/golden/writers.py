"""Shared parts of the record writers: Draws (the seeded choices), the Writer type, writers several intents use.

:class:`Draws` is one seeded random stream over the store: series as customers name them, products, orders,
countries, PII values.
"""

from __future__ import annotations

import random
import re
from typing import Any, Callable, Sequence

from model_repository.golden.phrasing import COUNTRIES, japanese_alias, romaji_aliases, short_aliases, typo
from model_repository.golden.policy_aspects import ASPECTS, aspects_for
from model_repository.golden.record import GoldenRecord
from model_repository.golden.store import Store

FIRST_NAMES = ("john", "maria", "kenji", "aisha", "liam", "sofia", "daniel", "yuki", "olivia", "marcus")
LAST_NAMES = ("smith", "garcia", "tanaka", "khan", "nguyen", "rossi", "miller", "sato", "brown", "lopez")
STREETS = ("Maple", "Cedar", "Willow", "Lakeview", "Harbor", "Sunset", "Oak Ridge", "Pine")
TOWNS = ("Springfield, IL", "Austin, TX", "Portland, OR", "Columbus, OH", "Tucson, AZ", "Raleigh, NC")


class Draws:
    """One seeded random stream over the store: series as customers name them, products, orders, countries, PII values."""

    def __init__(self, store: Store, rng: random.Random) -> None:
        self.store, self.rng = store, rng
        self.status_turn = -1  # next_order's place in its round of statuses

    def pick(self, seq: Sequence[Any]) -> Any:
        return self.rng.choice(list(seq))

    def carried_series(self, real_share: float = 0.6) -> dict[str, Any]:
        pool = self.store.carried_real if self.rng.random() < real_share else self.store.fictional
        return self.pick(pool)

    def name(self, s: dict[str, Any]) -> str:
        name = s["series"]
        if ":" in name and self.rng.random() < 0.5:
            name = name.split(":")[0]
        return name.lower() if self.rng.random() < 0.3 else name

    def volume(self, s: dict[str, Any], fmt: str = "tankobon", language: str = "English") -> dict[str, Any] | None:
        items = self.store.products_of(s["series"], fmt, language)
        return self.pick(items) if items else None

    def with_alias(self, kind: str, carried: bool = True) -> tuple[dict[str, Any], str]:
        pool = [s for s in (self.store.carried_real if carried else self.store.not_carried)
                if (kind == "ja" and japanese_alias(s)) or (kind == "romaji" and romaji_aliases(s)) or (kind == "short" and short_aliases(s))]
        s = self.pick(pool)
        alias = japanese_alias(s) if kind == "ja" else self.pick(romaji_aliases(s) if kind == "romaji" else short_aliases(s))
        return s, alias

    def order(self, statuses: Sequence[str] = ("processing", "shipped", "out_for_delivery", "delivered", "cancelled")) -> dict[str, Any]:
        return self.pick(self.store.orders_by_status[self.pick(statuses)])

    def next_order(self) -> dict[str, Any]:
        """Orders of every status in turn, so each writer covers all five."""
        statuses = ("shipped", "delivered", "processing", "out_for_delivery", "cancelled")
        self.status_turn += 1
        return self.pick(self.store.orders_by_status[statuses[self.status_turn % len(statuses)]])

    def order_text(self, oid: str) -> str:
        r = self.rng.random()
        return oid.lower() if r < 0.15 else ("#" + oid if r < 0.25 else oid)

    def country(self) -> tuple[str, str, str]:
        return self.pick(COUNTRIES)

    def fill(self, text: str, **extra: str) -> str:
        c = self.country()
        slots = {"country": c[0], "country_ja": c[1], "country_romaji": c[2], **extra}
        return re.sub(r"\{(\w+)\}", lambda m: slots[m.group(1)], text)

    # PII --------------------------------------------------------------------------------------------
    def email(self) -> tuple[str, str]:
        first, last = self.pick(FIRST_NAMES), self.pick(LAST_NAMES)
        domain = self.pick(("gmail", "yahoo", "outlook", "proton"))
        if self.rng.random() < 0.4:
            return f"{first} dot {last} at {domain} dot com", f"{first}.{last}@{domain}.com"
        return f"{first}.{last}{self.rng.randrange(1, 99)}@{domain}.com", ""

    def phone(self) -> str:
        a, b, c = self.rng.randrange(201, 990), self.rng.randrange(200, 999), self.rng.randrange(0, 10_000)
        return self.pick((f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"+1 {a} {b} {c:04d}"))

    def card(self) -> str:
        digits = [4] + [self.rng.randrange(10) for _ in range(14)]
        total = 0
        for i, d in enumerate(reversed(digits)):  # Luhn check digit
            d = d * 2 if i % 2 == 0 else d
            total += d - 9 if d > 9 else d
        digits.append((10 - total % 10) % 10)
        s = "".join(map(str, digits))
        return " ".join(s[i:i + 4] for i in range(0, 16, 4))

    def ssn(self) -> str:
        return f"{self.rng.randrange(100, 666)}-{self.rng.randrange(10, 99)}-{self.rng.randrange(1000, 9999)}"

    def address(self) -> str:
        return (f"{self.rng.randrange(12, 9800)} {self.pick(STREETS)} {self.pick(('Street', 'Avenue', 'Road', 'Lane'))}, "
                f"{self.pick(TOWNS)} {self.rng.randrange(10000, 99999)}")

    def passport(self) -> str:
        return f"{self.pick('ABCEKLMPX')}{self.rng.randrange(10_000_000, 99_999_999)}"

    def dob(self) -> str:
        return f"{self.rng.randrange(1, 13):02d}/{self.rng.randrange(1, 29):02d}/{self.rng.randrange(1955, 2006)}"


#: Draws one record (None: this draw cannot make one; the caller draws again).
Writer = Callable[[Draws], "GoldenRecord | None"]


def new_record(draw: Draws, message: str, intent: str, complexity: str = "simple", *edge: str) -> GoldenRecord:
    """A record of ``message`` with no facts yet."""
    return GoldenRecord(draw.store, message, intent, complexity, list(edge))


def carried_volume(draw: Draws) -> tuple[dict[str, Any], dict[str, Any]]:
    """A carried series and one of its English tankobon volumes."""
    s = draw.carried_series()
    return s, draw.volume(s)


def phrase(draw: Draws, phrasings: Sequence[str], **slots: Any) -> str:
    """One of ``phrasings`` with its ``{slots}`` filled (``{country}`` & co. drawn)."""
    return draw.fill(draw.pick(phrasings), **{k: str(v) for k, v in slots.items()})


def policy_writer(intent: str, field_: str, *tags: str, complexity: str = "simple") -> Writer:
    """Writes a question about a policy aspect of ``intent``, phrased from its ``field_`` phrasings (ask, ja, ...)."""
    def make(draw: Draws) -> GoldenRecord:
        key = draw.pick(aspects_for(intent, field_))
        a = ASPECTS[key]
        s, p = carried_volume(draw)
        tmpl = draw.pick(getattr(a, field_))
        msg = draw.fill(tmpl, name=draw.name(s), vol=str(p["volume"]))
        r = new_record(draw, msg, intent, complexity, *tags)
        if "{name}" in tmpl:
            r.product(p, ())
        return r.policy(key)
    return make


def with_typo(r: GoldenRecord, draw: Draws) -> GoldenRecord:
    """``r`` with one keyboard slip in its message."""
    r.untyped_message = r.message  # the untyped message: two typo records never share one
    r.message = typo(r.message, draw.rng)
    return r.tag("typo")
