"""The open-world conversation sets played without a service: the follow-up stage (server/stages/followup.py, or
another implementation of ``resolve`` -- ``--stage FILE``, e.g. an earlier version), the facts stage and the
template composer, over the catalog built from DATA_DIR, each turn kept as the pipeline keeps it
(server/sessions/turns.py). The intent is assumed (order_status when the text names an order id, else
product_question): the figure is the follow-up resolution's, not the classifier's. Judged like the live run
(model_repository/lifecycle/evaluation/conversations_openworld.judge).

``python -m benchmarks.sessions.followup_offline [--data .build/data] [--set heldout|dev] [--stage FILE]``
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from model_repository.lifecycle.evaluation import conversations_openworld as ow
from model_repository.lifecycle.evaluation.conversations_openworld import row_of

def play_offline(records: Sequence[dict[str, Any]], resolver: Any, resolve: Callable[..., Any] | None = None,
                 orders: Callable[[str, str], Any] | None = None) -> list[dict[str, Any]]:
    """Each conversation through ``resolve`` (the follow-up stage; default server/stages/followup.py), the facts
    stage and the template composer, the turns kept as the pipeline keeps them (server/sessions/turns.py)."""
    rows = []
    for record in records:
        history: list[Any] = []
        answer, asins, text = "", [], ""
        for message in record["turns"]:
            text, answer, asins = play_turn(message, history, resolver, resolve, orders, record.get("customer_id", ""))
        rows.append(row_of(record, answer, asins, text))
    return rows


def play_turn(message: str, history: list[Any], resolver: Any, resolve: Callable[..., Any] | None = None,
              orders: Callable[[str, str], Any] | None = None, customer_id: str = "") -> tuple[str, str, list[str]]:
    """One turn: ``message`` resolved against ``history`` (default: server/stages/followup.py), the facts stage and
    the template composer; the turn is appended to ``history`` as the pipeline keeps it. (resolved text, answer,
    card ASINs)."""
    from server.ids import find_order_ids
    from server.llm.base import LLMRequest
    from server.llm.templates import compose
    from server.sessions.turns import turn_of
    from server.stages import entities as entities_stage
    from server.stages import followup

    follow = (resolve or followup.resolve)(message, history, resolver)
    text = follow.text
    ids = find_order_ids(text)
    intent = "order_status" if ids else "product_question"
    facts = entities_stage._facts_for_customer(resolver, text, intent, ids[0] if ids else None, (), 3, orders,
                                               customer_id)
    request = LLMRequest(intent=facts.intent or intent, user_message=text, context=(), temperature=0.0,
                         max_tokens=256, timeout_s=1.0)
    answer, asins = compose(request, facts)
    result = _Result(facts.intent or intent, answer, tuple(_Card(a) for a in asins))
    history.append(turn_of(message, text, facts, result, follow))
    return text, answer, list(asins)


class _Card:
    def __init__(self, asin: str) -> None:
        self.asin = asin


class _Result:
    tier = "template"

    def __init__(self, intent: str, answer: str, cards: tuple[_Card, ...]) -> None:
        self.intent, self.answer, self.cards = intent, answer, cards


def _offline_store(data_dir: Path, work: Path) -> Any:
    from model_repository.index.catalog import build_catalog
    from server.retrieval.store import CatalogStore

    work.mkdir(parents=True, exist_ok=True)
    return CatalogStore(build_catalog(data_dir / "catalog.jsonl", data_dir / "orders.jsonl", work / "catalog.sqlite",
                                      data_dir / "series.jsonl", data_dir / "policies.jsonl"))



def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=".build/data", help="the built data (catalog, orders, series, policies)")
    ap.add_argument("--set", choices=("heldout", "dev"), default="heldout")
    ap.add_argument("--stage", help="a follow-up module file whose resolve() to play instead of the current one")
    ap.add_argument("--out", default="benchmarks/results/conversations_openworld")
    args = ap.parse_args(argv)
    from server.retrieval.entities import EntityResolver

    resolve = None
    if args.stage:
        spec = importlib.util.spec_from_file_location("followup_under_test", args.stage)
        module = importlib.util.module_from_spec(spec)
        sys.modules["followup_under_test"] = module
        spec.loader.exec_module(module)
        resolve = module.resolve
    records = ow.load(ow.HELD_OUT if args.set == "heldout" else ow.DEV)
    with tempfile.TemporaryDirectory() as tmp:
        store = _offline_store(Path(args.data), Path(tmp))
        rows = play_offline(records, EntityResolver(store), resolve, orders=store.get_order)
        store.close()
    stem = f"{args.set}_offline" + ("_" + Path(args.stage).stem if args.stage else "")
    mode = "offline: follow-up + facts + template composer" + (f", stage {args.stage}" if args.stage else "")
    return ow.report(rows, args.set, mode, Path(args.out), stem)


if __name__ == "__main__":
    sys.exit(main())
