"""The conversation's state, read from the session's recent turns: what a follow-up can refer to.

Each slot is taken from the newest turn that has it, up to ``max_back`` turns back, so a small-talk turn or a
question about something else in between does not lose it ("MA-12345678 hasn't come" / "do you ship to canada?" /
"so when will it get here?"). The item slots (series, volume, products shown, author, the ask) move together:
they are the newest turn that was about a product. Built from :class:`~server.sessions.store.Turn` alone, so it
reads the same from the in-process and the Redis store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from server.sessions.store import Turn


@dataclass(frozen=True)
class ConversationState:
    series: str | None = None
    volume: int | None = None
    asins: tuple[str, ...] = ()  # products the item turn's answer showed, in order
    author: str | None = None
    item_ask: str = ""  # how the item turn asked (its resolved text), for a bare follow-up to ask the same way
    order_id: str | None = None
    attribute: str | None = None  # the attribute asked last, if any
    turns_back: int = 0  # how many turns back the item is (1 = the last turn)

    @property
    def has_item(self) -> bool:
        return bool(self.series or self.asins)


def state_of(history: Sequence[Turn], max_back: int = 4) -> ConversationState:
    item: Turn | None = None
    back = 0
    order_id = attribute = None
    for i, turn in enumerate(reversed(history[-max_back:]), start=1):
        if item is None and (turn.series or turn.asins):
            item, back = turn, i
        if order_id is None and turn.order_ids:
            order_id = turn.order_ids[-1]
        if attribute is None and getattr(turn, "attribute", None):
            attribute = turn.attribute
    if item is None:
        return ConversationState(order_id=order_id, attribute=attribute)
    return ConversationState(item.series, item.volume, tuple(item.asins), getattr(item, "author", None),
                             item.resolved or item.message, order_id, attribute, back)
