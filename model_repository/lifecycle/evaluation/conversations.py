"""``mangaassist eval-conversations``: follow-ups judged on multi-turn conversations, with and without memory.

Each conversation (``.build/golden/conversations.jsonl``, model_repository/golden/conversations.py) is played
turn by turn against a running service twice: *with memory* (one ``session_id`` for all its turns) and *without*
(a fresh ``session_id`` per turn, what the service did before sessions). The last turn is judged:

* **follow-up intent accuracy** -- the response's intent is one the conversation expects;
* **entity carry-over** -- the series + volume (or edition), the order id, or the card the conversation expects
  is what the answer is about (named in the answer or on its first card);
* **card correctness** -- the first card is the expected product (``asin``, or the card the service showed at
  ``card_from`` earlier in the conversation);
* ``must_state`` -- facts the answer must contain.

Figures are reported per split (``dev`` / ``heldout`` phrasings) and per template, as JSON and Markdown.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence, TextIO

from clients.sdk import AsyncMangaAssistClient

DIMENSIONS = ("intent", "carry_over", "card", "must_state", "all")


async def play(client: AsyncMangaAssistClient, conv: dict[str, Any], *, memory: bool, timeout: float) -> list[Any]:
    """Every turn's response (None for a turn that errored)."""
    session = f"eval-{conv['id']}-{uuid.uuid4().hex[:8]}"
    replies = []
    for turn in conv["turns"]:
        sid = session if memory else f"{session}-{len(replies)}"
        try:
            replies.append(await client.chat(turn, session_id=sid, timeout=timeout,
                                             customer_id=conv.get("customer_id", "")))
        except Exception as err:  # noqa: BLE001 -- a failed turn fails the conversation, not the run
            replies.append(err)
    return replies


def judge(conv: dict[str, Any], replies: Sequence[Any]) -> dict[str, bool | None]:
    """Per dimension: passed (True/False), or None when the conversation does not expect it."""
    expect, last = conv["expect"], replies[-1]
    if isinstance(last, Exception):
        return {d: False for d in DIMENSIONS}
    answer = last.answer.lower()
    first_card = last.cards[0] if last.cards else None
    out: dict[str, bool | None] = {"intent": last.intent in expect["intent"]}
    expected_asin = expect.get("asin")
    if expect.get("card_from"):
        turn, index = expect["card_from"]
        earlier = replies[turn]
        cards = [] if isinstance(earlier, Exception) else list(earlier.cards)
        expected_asin = cards[index].asin if cards and -len(cards) <= index < len(cards) else None
    if expect.get("series"):
        named = expect["series"].lower()
        volume = expect.get("volume")
        in_answer = named in answer and (volume is None or f"vol. {volume}" in answer or f"vol {volume}" in answer)
        on_card = first_card is not None and (first_card.asin == expected_asin or (
            named in first_card.title.lower() and (volume is None or f"vol. {volume}" in first_card.title.lower())))
        out["carry_over"] = in_answer or on_card
    elif expect.get("order_id"):
        out["carry_over"] = expect["order_id"].lower() in answer
    elif expect.get("card_from"):
        out["carry_over"] = expected_asin is not None and (
            (first_card is not None and first_card.asin == expected_asin) or expected_asin.lower() in answer)
    else:
        out["carry_over"] = None
    out["card"] = (first_card is not None and first_card.asin == expected_asin) if expected_asin else None
    groups = expect.get("must_state") or []
    out["must_state"] = all(any(a.lower() in answer for a in g) for g in groups) if groups else None
    out["all"] = all(v for v in out.values() if v is not None)
    return out


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    def rates(part: Sequence[dict[str, Any]]) -> dict[str, Any]:
        res: dict[str, Any] = {"n": len(part)}
        for mode in ("memory", "no_memory"):
            res[mode] = {}
            for d in DIMENSIONS:
                vals = [r[mode][d] for r in part if r[mode][d] is not None]
                res[mode][d] = round(sum(vals) / len(vals), 4) if vals else None
        return res

    by_split, by_template = defaultdict(list), defaultdict(list)
    for r in rows:
        by_split[r["split"]].append(r)
        by_template[r["template"]].append(r)
    return {"all": rates(rows), "by_split": {k: rates(v) for k, v in sorted(by_split.items())},
            "by_template": {k: rates(v) for k, v in sorted(by_template.items())}}


def markdown(summary: dict[str, Any], target: str) -> str:
    def pct(v: Any) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    lines = ["# Follow-ups: multi-turn conversations, with and without session memory", "",
             f"Target `{target}`; {summary['all']['n']} conversations. Each cell: with memory / without.", "",
             "| slice | n | follow-up intent | entity carry-over | answer card | must state | all |", "|---|---|---|---|---|---|---|"]
    slices = [("all", summary["all"]), *((f"split {k}", v) for k, v in summary["by_split"].items()),
              *((f"template {k}", v) for k, v in summary["by_template"].items())]
    for name, r in slices:
        cells = [f"{pct(r['memory'][d])} / {pct(r['no_memory'][d])}" for d in DIMENSIONS]
        lines.append(f"| {name} | {r['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


async def evaluate(target: str, conversations: Sequence[dict[str, Any]], *, token: str | None = None,
                   timeout: float = 10.0, concurrency: int = 2) -> list[dict[str, Any]]:
    gate = asyncio.Semaphore(concurrency)
    async with AsyncMangaAssistClient(target, token=token, timeout=timeout) as client:
        async def one(conv: dict[str, Any]) -> dict[str, Any]:
            async with gate:
                with_memory = await play(client, conv, memory=True, timeout=timeout)
                without = await play(client, conv, memory=False, timeout=timeout)
            last = with_memory[-1]
            return {"id": conv["id"], "template": conv["template"], "split": conv["split"], "turns": conv["turns"],
                    "memory": judge(conv, with_memory), "no_memory": judge(conv, without),
                    "answer": getattr(last, "answer", repr(last)), "intent": getattr(last, "intent", ""),
                    "cards": [c.asin for c in getattr(last, "cards", ())]}

        return list(await asyncio.gather(*(one(c) for c in conversations)))


def run(target: str, path: str, out_dir: str, *, token: str | None = None, timeout: float = 10.0,
        concurrency: int = 2, limit: int | None = None, out: TextIO = sys.stdout, openworld: bool = True) -> int:
    """The golden conversations' report, then (``openworld``) the frozen open-world held-out set's beside it
    (model_repository/lifecycle/evaluation/conversations_openworld.py: does the last answer address the item in play)."""
    conversations = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if limit:
        conversations = conversations[:limit]
    rows = asyncio.run(evaluate(target, conversations, token=token, timeout=timeout, concurrency=concurrency))
    summary = summarise(rows)
    dest = Path(out_dir)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "conversations.json").write_text(json.dumps({"target": target, "summary": summary, "rows": rows},
                                                        indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    md = markdown(summary, target)
    if openworld:
        from model_repository.lifecycle.evaluation import conversations_openworld as ow

        for which, title in (("heldout", "frozen held-out set, phrasings no template has; read while tuning"),
                             ("blind", "frozen blind set; first run 86.3%, its failures read since"),
                             ("fresh", "frozen fresh set; first run 57.1%, its failures read since"),
                             ("fresh2", "frozen second fresh set, written before the changes it measures; "
                                        "failures never read, summaries read between tuning rounds"),
                             ("fresh3", "frozen third fresh set, written after the last change; never measured "
                                        "before this run")):
            records = ow.load(ow.SETS[which])
            records = records[:limit] if limit else records
            ow_rows = asyncio.run(ow.evaluate(target, records, token=token, timeout=timeout, concurrency=concurrency))
            ow_summary = ow.summarise(ow_rows)
            stem = "conversations_openworld" if which == "heldout" else f"conversations_openworld_{which}"
            (dest / f"{stem}.json").write_text(json.dumps(
                {"target": target, "summary": ow_summary, "rows": ow_rows}, indent=1, ensure_ascii=False) + "\n",
                encoding="utf-8")
            md += "\n" + ow.markdown(ow_summary, f"Open-world conversations ({title})")
    (dest / "conversations.md").write_text(md, encoding="utf-8")
    print(md, file=out)
    return 0
