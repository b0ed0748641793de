"""``mangaassist drift``: reports regenerated from the traffic log (and the golden probe), one command each.

    mangaassist drift report [--window 7d] [--now ISO|epoch] [--golden-accuracy A --golden-baseline B]
    mangaassist drift triggers [--window 1h] [--now ISO|epoch] [--fail-on-crossed]
    mangaassist drift cost [--instances N]
    mangaassist drift label-export --out tasks.json [--max 200] [--below 0.7]
    mangaassist drift label-import labelled.json --out train_extra.jsonl

(also ``python -m model_repository.lifecycle.drift ...``). The store is the one the service's settings name
(``MANGAASSIST_CONFIG`` / ``MANGAASSIST_TRAFFIC_*``), or ``--sqlite PATH`` / ``--postgres DSN``. An operator tool
of the model lifecycle: it reads the traffic store directly with the service's own settings, store and signal code
(the same rows and the same code as the service's drift, trigger and label-queue jobs) and needs no running
service (an operator runs it from a pod or a laptop with the DSN). The report's writer is drift_report.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("benchmarks/results/drift")


def _seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


def _when(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp()


def _span(text: str) -> tuple[float, float]:
    a, b = text.split(",")
    return _when(a), _when(b)


def open_from_args(args: argparse.Namespace) -> Any:
    from server.traffic.store import PostgresTrafficStore, SQLiteTrafficStore, open_store

    if args.sqlite:
        return SQLiteTrafficStore(args.sqlite)
    if args.postgres:
        return PostgresTrafficStore(args.postgres)
    store = open_store(_settings())
    if store is None:
        raise SystemExit("the traffic log is off (traffic.enabled: false); pass --sqlite or --postgres")
    return store


def _settings() -> Any:
    from server.settings import load_settings

    return load_settings()


def cmd_report(args: argparse.Namespace) -> int:
    from model_repository.lifecycle import drift_report as report
    from server.drift.decision import GoldenProbe, decide
    from server.drift.signals import compute

    settings = _settings()
    cfg = settings.drift
    store = open_from_args(args)
    if args.reference and args.current:
        ref_span, cur_span = _span(args.reference), _span(args.current)
    else:
        window = _seconds(args.window) if args.window else settings.drift.window_s
        newest = store.records(since=None)[-1:] if args.now is None else []
        now = _when(args.now) if args.now is not None else (newest[0].ts + 1e-3 if newest else 0.0)
        ref_span, cur_span = (now - 2 * window, now - window), (now - window, now)
    reference, current = store.records(*ref_span), store.records(*cur_span)
    signals = compute(reference, current, cfg)
    golden = GoldenProbe(args.golden_accuracy, args.golden_baseline or args.golden_accuracy) if args.golden_accuracy else None
    decision = decide(signals, golden, cfg)
    windows = {"reference": [_iso(t) for t in ref_span], "current": [_iso(t) for t in cur_span]}
    thresholds = {k: getattr(cfg, k) for k in ("intent_share_points", "min_confidence", "kl_threshold", "kl_alpha", "outlier_share", "new_term_share")}
    path = report.write(Path(args.out), args.name, reference, current, signals, decision, golden, windows, thresholds)
    print(json.dumps({"report": str(path), "firing": signals.firing, "cause": decision.cause, "causes": list(decision.causes),
                      "evidence": list(decision.evidence)}, indent=2))
    return 1 if args.fail_on_alarm and signals.firing else 0


def cmd_triggers(args: argparse.Namespace) -> int:
    """The seven reversal triggers (server/drift/triggers.py) over the log's last window, as the service's job does."""
    from server.drift.triggers import TriggerConfig, evaluate, markdown

    settings = _settings()
    store = open_from_args(args)
    window = _seconds(args.window) if args.window else settings.triggers.window_s
    newest = store.records(since=None)[-1:] if args.now is None else []
    now = _when(args.now) if args.now is not None else (newest[0].ts + 1e-3 if newest else 0.0)
    ref_span, cur_span = (now - 2 * window, now - window), (now - window, now)
    results = evaluate(store.records(*cur_span), store.records(*ref_span), TriggerConfig.from_settings(settings))
    windows = {"reference": [_iso(t) for t in ref_span], "current": [_iso(t) for t in cur_span]}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(
        {"windows": windows, "triggers": [r.as_dict() for r in results.values()]}, indent=2) + "\n")
    text = markdown(results, windows)
    (out / f"{args.name}.md").write_text(text)
    print(text)
    return 1 if args.fail_on_crossed and any(r.crossed for r in results.values()) else 0


def cmd_cost(args: argparse.Namespace) -> int:
    from server.traffic.cost import daily_costs

    settings = _settings()
    store = open_from_args(args)
    price = args.usd_per_hour if args.usd_per_hour is not None else settings.costs.instance_usd_per_hour
    days = daily_costs(store.records(), price, args.instances)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "daily_cost.json").write_text(json.dumps({"usd_per_hour": price, "instances": args.instances, "days": days}, indent=2) + "\n")
    lines = ["# Daily cost", "", f"Triton instance price ${price}/h x {args.instances}; LLM cost from token prices (settings.llm).", "",
             "| day | turns | LLM $ | Triton $ (hours) | total $ | $ / turn | tiers |", "|---|---|---|---|---|---|---|"]
    for d in days:
        tiers = "; ".join(f"{k}: {int(v['answers'])} ans, {int(v['input_tokens'])}+{int(v['output_tokens'])} tok, ${v['llm_usd']:.4f}"
                          for k, v in d["tiers"].items())
        lines.append(f"| {d['day']} | {d['turns']} | {d['llm_usd']:.4f} | {d['triton_usd']:.2f} ({d['triton_hours']}) | "
                     f"{d['total_usd']:.2f} | {d['usd_per_turn']:.5f} | {tiers} |")
    (out / "daily_cost.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def cmd_label_export(args: argparse.Namespace) -> int:
    from server.drift import labels

    store = open_from_args(args)
    since = _when(args.since) if args.since else None
    feedback_db = args.feedback_db if args.feedback_db is not None else getattr(getattr(_settings(), "rollout", None), "feedback_db", "")
    tasks = labels.sample(store.records(since=since), below=args.below, limit=args.max, seed=args.seed,
                          feedback=labels.read_feedback(feedback_db))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(labels.to_label_studio(tasks), indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({"tasks": len(tasks), "out": args.out}))
    return 0


def cmd_label_import(args: argparse.Namespace) -> int:
    from server.drift import labels

    exported = json.loads(Path(args.labelled).read_text())
    rows = labels.from_label_studio(exported)
    added = labels.append_training(rows, Path(args.out))
    print(json.dumps({"labelled": len(rows), "added": added, "out": args.out}))
    return 0


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mangaassist drift", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--sqlite", help="traffic log SQLite file (default: the settings' store)")
        p.add_argument("--postgres", help="traffic log PostgreSQL DSN")

    p = sub.add_parser("report", help="drift signals, the decision table's verdict, plots")
    common(p)
    p.add_argument("--window", help="window length (7d, 12h, seconds); default drift.window_s")
    p.add_argument("--now", help="end of the current window (ISO UTC or epoch); default: the newest turn")
    p.add_argument("--reference", help="explicit reference window START,END (ISO or epoch)")
    p.add_argument("--current", help="explicit current window START,END")
    p.add_argument("--golden-accuracy", type=float, help="the classifier's golden-set accuracy now")
    p.add_argument("--golden-baseline", type=float, help="its accuracy when the version shipped")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--name", default="drift")
    p.add_argument("--fail-on-alarm", action="store_true", help="exit 1 when any alarm fires (CI/cron)")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("triggers", help="the seven reversal triggers over the log's last window")
    common(p)
    p.add_argument("--window", help="window length (1h, 7d, seconds); default triggers.window_s")
    p.add_argument("--now", help="end of the current window (ISO UTC or epoch); default: the newest turn")
    p.add_argument("--out", default=str(DEFAULT_OUT / "triggers"))
    p.add_argument("--name", default="triggers")
    p.add_argument("--fail-on-crossed", action="store_true", help="exit 1 when any trigger is crossed (CI/cron)")
    p.set_defaults(fn=cmd_triggers)

    p = sub.add_parser("cost", help="daily cost report from the traffic log")
    common(p)
    p.add_argument("--instances", type=int, default=1, help="Triton instances running")
    p.add_argument("--usd-per-hour", type=float, help="instance price (default costs.instance_usd_per_hour)")
    p.add_argument("--out", default="benchmarks/results/cost")
    p.set_defaults(fn=cmd_cost)

    p = sub.add_parser("label-export", help="low-confidence and thumbs-down turns -> Label Studio tasks JSON")
    common(p)
    p.add_argument("--out", required=True)
    p.add_argument("--since", help="only turns after this (ISO or epoch)")
    p.add_argument("--below", type=float, default=0.7, help="confidence below which a turn is sampled")
    p.add_argument("--max", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--feedback-db", help="the Feedback RPC's SQLite table (default rollout.feedback_db): thumbs-down "
                                          "turns are exported first")
    p.set_defaults(fn=cmd_label_export)

    p = sub.add_parser("label-import", help="a labelled Label Studio export -> training rows (JSONL)")
    p.add_argument("labelled")
    p.add_argument("--out", required=True, help="training-data JSONL to append to (text, label)")
    p.set_defaults(fn=cmd_label_import)

    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
