"""The open-world sets through a running service: titles nobody listed must be declined, not priced.

The frozen sets (``tests/fixtures/openworld/``; written before the resolver they measure, sha256 in
``FROZEN.sha256``) hold invented titles in title grammars the catalog generator does not use and real series in
none of the store's lists. An answer *declines* when it states no price and no stock of any product (a sentence
naming a volume, an edition, an ASIN or one of the store's series) and shows no product card: whatever it says instead ("we don't carry X. Did you mean Y?", "which one do you mean?", "I
couldn't find that title") the customer was not handed another product's price as if it were the one asked for.

``python -m model_repository.lifecycle.evaluation.openworld --target HOST:PORT`` prints the report (dev and held-out halves side
by side, per family); ``mangaassist eval`` adds the held-out figures beside the golden set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from clients.sdk import AsyncMangaAssistClient

SETS_DIR = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "openworld"
DATA_DIR = Path(".build/data")
HELD_OUT = ("heldout_invented_titles.jsonl", "heldout_unlisted_series.jsonl")
DEV = ("dev_invented_titles.jsonl", "dev_unlisted_series.jsonl")
#: written after the resolver's tuning had read the held-out sets' failures (tests/fixtures/openworld/write_blind.py)
BLIND = ("blind_invented_titles.jsonl", "blind_unlisted_series.jsonl")
#: written after the blind sets' failures were read (write_fresh.py, write_fresh_unlisted.py)
FRESH = ("fresh_invented_titles.jsonl", "fresh_unlisted_series.jsonl")
SETS = {"dev": DEV, "heldout": HELD_OUT, "blind": BLIND, "fresh": FRESH}
#: a price or a stock statement in the answer text
PRICED = re.compile(r"[$\u00a5\uffe5\u20ac\u00a3]\s?\d|\d+(?:\.\d\d)?\s?(?:(?:USD|dollars?|yen)\b|円)|\bin stock\b|"
                    r"\bout of stock\b|\bsold out\b|在庫", re.I)


@dataclass(frozen=True)
class Judged:
    id: str
    kind: str
    family: str
    message: str
    declined: bool
    why: str  # "" when declined, else what was stated
    answer: str


def load(name: str, sets_dir: Path = SETS_DIR) -> list[dict[str, Any]]:
    with (sets_dir / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


#: a sentence about a product: a volume, an edition, an ASIN or a series the store carries or lists
_PRODUCT_WORDS = re.compile(r"\bvol(?:ume)?s?\b\.?|\bedition\b|\bbox set\b|\bomnibus\b|\bB0[A-Z0-9]{8}\b|巻", re.I)
_SENTENCES = re.compile(r"(?<![Vv]ol\.)(?<![Vv]ols\.)(?<=[.!?])\s+|\n+")


def _series_names(data_dir: Path = DATA_DIR) -> tuple[str, ...]:
    path = data_dir / "series.jsonl"
    if not path.is_file():
        return ()
    with path.open(encoding="utf-8") as fh:
        return tuple(sorted({json.loads(line)["series"].lower() for line in fh if line.strip()}, key=len, reverse=True))


def product_claim(answer: str, series: Sequence[str] = ()) -> str | None:
    """The first price or stock statement said of a product: in a sentence that names a volume, an edition, an
    ASIN or a series of the store. A policy's own figures ("Premium costs $7.99 per month") are not product
    claims."""
    for sentence in _SENTENCES.split(answer):
        stated = PRICED.search(sentence)
        if stated and (_PRODUCT_WORDS.search(sentence) or any(s in sentence.lower() for s in series)):
            return stated.group(0)
    return None


def judge(record: dict[str, Any], answer: str, cards: Sequence[Any], series: Sequence[str] = ()) -> Judged:
    claim = product_claim(answer, series)
    why = ", ".join(
        [f"card {c.title!r} ${c.price:.2f}" for c in cards] + ([f"text states {claim!r} of a product"] if claim else []))
    return Judged(record["id"], record["kind"], record.get("family", record["kind"]), record["message"], not why, why,
                  answer)


async def run(records: Sequence[dict[str, Any]], target: str, *, concurrency: int = 4, timeout: float = 20.0,
              token: str | None = None) -> list[Judged]:
    limit = asyncio.Semaphore(concurrency)
    series = _series_names()
    async with AsyncMangaAssistClient(target, timeout=timeout, token=token) as client:
        async def one(record: dict[str, Any]) -> Judged:
            async with limit:
                reply = await client.chat(record["message"], session_id=f"openworld-{record['id']}")
                return judge(record, reply.answer, list(reply.cards), series)

        return list(await asyncio.gather(*(one(r) for r in records)))


def summarise(judged: Sequence[Judged]) -> dict[str, Any]:
    by_family: dict[str, list[Judged]] = defaultdict(list)
    for j in judged:
        by_family[j.family].append(j)
    kinds = Counter(j.kind for j in judged)
    return {
        "n": len(judged),
        "declined": sum(j.declined for j in judged) / len(judged) if judged else 0.0,
        "by_kind": {k: sum(j.declined for j in judged if j.kind == k) / n for k, n in kinds.items()},
        "by_family": {f: sum(j.declined for j in js) / len(js) for f, js in sorted(by_family.items())},
        "failures": [{"id": j.id, "message": j.message, "why": j.why, "answer": j.answer[:200]}
                     for j in judged if not j.declined],
    }


def format_report(reports: dict[str, dict[str, Any]]) -> str:
    lines = ["open-world titles (declined = no price, no stock, no card of another product)"]
    for name, rep in reports.items():
        kinds = ", ".join(f"{k} {v:.1%}" for k, v in sorted(rep["by_kind"].items()))
        lines.append(f"  {name:<8} n={rep['n']:<4} declined {rep['declined']:.1%}  ({kinds})")
        lines.append("           by family: " + ", ".join(f"{f} {v:.0%}" for f, v in rep["by_family"].items()))
        for f in rep["failures"][:5]:
            lines.append(f"           x {f['message']!r}: {f['why']}")
    return "\n".join(lines)


async def evaluate(target: str, *, halves: Sequence[str] = ("dev", "heldout", "blind"), concurrency: int = 4,
                   token: str | None = None) -> dict[str, dict[str, Any]]:
    out = {}
    for half in halves:
        records = [r for name in SETS[half] for r in load(name)]
        out[half] = summarise(await run(records, target, concurrency=concurrency, token=token))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_repository.lifecycle.evaluation.openworld", description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="localhost:50051")
    parser.add_argument("--token")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--sets", default="dev,heldout,blind", help="comma-separated: dev, heldout, blind, fresh")
    parser.add_argument("--out", help="write the JSON report here")
    args = parser.parse_args(argv)
    reports = asyncio.run(evaluate(args.target, halves=args.sets.split(","), concurrency=args.concurrency,
                                   token=args.token))
    print(format_report(reports))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(reports, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
