"""``mangaassist model ...`` (also ``python -m model_repository.lifecycle ...``): versions, gate, rollout.

    mangaassist model baseline   [--build-dir .build] [--repository DIR]   # lay out DIR, register v1 as champion
    mangaassist model train      [--parent 1|none] [--seed N] [--max-train N] [--max-steps N] [--lr X]
                                 [--shuffle-labels] [--layers N] [--quantize]   # -> next version dir + registry
                                 [--triton URL]...   # ... and loaded on each running Triton (explicit mode)
    mangaassist model gate       --challenger N [--triton URL] [--threshold k=v]...   # = `mangaassist eval --gate --challenger N`
    mangaassist model rollout    --stable N [--shadow N] [--canary N:PCT]   # validated, then the service reloads it
    mangaassist model promote    N [--approved-by WHO --reason WHY] [--triton URL]...  # refused without a passing
                                 # gate record; champion := N, stable := N; who approved it, when and why are recorded
    mangaassist model card       [--version N] [--out DIR]  # model cards (model_repository/lifecycle/cards.py)
    (gate records name the sha256 of the file judged; rollout/promote refuse a served file that hashes otherwise)
    mangaassist model rollback     [--triton URL]...  # a canary: removed; else champion/stable := the previous champion
    mangaassist model status              # versions, lineage, gate records, aliases, the rollout file
    mangaassist retrain LABELLED... [--triton URL] [--max-steps N]   # flywheel rows -> train -> load -> gate -> shadow

Common: ``--lifecycle-dir`` (registry: mlflow.db, artefacts; default .lifecycle), ``--repository`` (the Triton
repository holding the versions; default <lifecycle-dir>/triton), ``--rollout-file`` (default
<lifecycle-dir>/rollout.yaml: what the service's ``rollout.file`` names). Exit 0 ok, 2 refused / bad usage, 3 the
gate failed.

``--triton URL`` (repeatable: every replica) on train / promote / rollback: the repository API loads what changed
(the new version directory; the re-pinned ensemble) on a running Triton started with ``--model-control-mode=explicit``
-- no restart, no failed request (model_repository/lifecycle/serving.py); ``--triton-header NAME=VALUE`` for a
restricted repository protocol. A refused load exits 2 after the registry and the files changed (load again).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence, TextIO

from model_repository.lifecycle.registry import CHAMPION, DEFAULT_LIFECYCLE_DIR, GateRequired

EXIT_OK, EXIT_REFUSED, EXIT_GATE_FAILED = 0, 2, 3


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lifecycle-dir", type=Path, default=DEFAULT_LIFECYCLE_DIR)
    p.add_argument("--repository", type=Path, help="Triton repository with the versions (default <lifecycle-dir>/triton)")
    p.add_argument("--rollout-file", type=Path, help="the service's rollout.file (default <lifecycle-dir>/rollout.yaml)")
    p.add_argument("--build-dir", type=Path, default=Path(".build"))


def _serving(p: argparse.ArgumentParser) -> None:
    p.add_argument("--triton", action="append", default=[], metavar="URL",
                   help="load the change on this running Triton (explicit model control); repeat for every replica")
    p.add_argument("--triton-header", action="append", default=[], metavar="NAME=VALUE",
                   help="header for Triton's restricted repository protocol")


def _load(args: argparse.Namespace, repo: Path, out: TextIO) -> None:
    if not args.triton:
        return
    from model_repository.lifecycle import serving

    headers = dict(h.partition("=")[::2] for h in args.triton_header)
    ready = serving.load(args.triton, repo, headers=headers)
    for url, served in ready.items():
        print(f"{url}: serving {serving.MODEL} versions {', '.join(served)}", file=out)


def gate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--triton", default="localhost:8001", help="tritonserver gRPC address serving both versions")
    p.add_argument("--champion", help="compare against this version (default: the registry's champion)")
    p.add_argument("--requests", type=int, default=200, help="single requests per version for p50/p99")
    p.add_argument("--seconds", type=float, default=12.0, help="closed-loop throughput run per version (in 0.25 s windows taken in turn)")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--golden", type=Path, default=Path(".build/golden/golden.jsonl"), help="golden set for the answer checks")
    p.add_argument("--answer-sample", type=int, default=200, help="golden records answered by both versions (0 = all)")
    p.add_argument("--service-config", type=Path, help="the service's config.yaml (routing, guardrails, retrieval) "
                   "for the answer checks (default: the defaults + MANGAASSIST_* env)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mangaassist model", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("baseline", help="lay out the repository and register version 1 (the build's) as champion")
    _common(b)
    t = sub.add_parser("train", help="train the next version into the repository and register it (challenger)")
    _common(t)
    t.add_argument("--parent", default="1", help="version to fine-tune ('none' = the base encoder)")
    t.add_argument("--seed", type=int, default=7)
    t.add_argument("--max-train", type=int, default=512, help="random training subset (0 = all)")
    t.add_argument("--max-steps", type=int, default=30)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=2e-5)
    t.add_argument("--shuffle-labels", action="store_true", help="the deliberately worse challenger")
    t.add_argument("--layers", type=int, help="keep the first N encoder layers")
    t.add_argument("--quantize", action="store_true", help="serve the int8 dynamic-quantised graph")
    _serving(t)
    g = sub.add_parser("gate", help="gate a challenger against the champion on Triton; records the verdict")
    _common(g)
    g.add_argument("--challenger", required=True)
    g.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE")
    gate_arguments(g)
    r = sub.add_parser("rollout", help="write a validated rollout file (the service reloads it)")
    _common(r)
    r.add_argument("--stable", required=True)
    r.add_argument("--shadow")
    r.add_argument("--canary", metavar="VERSION:PERCENT")
    pr = sub.add_parser("promote", help="champion := VERSION (needs a passing gate record); rollout stable := VERSION")
    _common(pr)
    pr.add_argument("version")
    pr.add_argument("--approved-by", default=None, help="who approves the promotion (default: the OS user running it); "
                    "recorded on the version with --reason and the time (its model card's decision record)")
    pr.add_argument("--reason", default="", help="why it is promoted (the gate run, the canary's figures, ...)")
    _serving(pr)
    cd = sub.add_parser("card", help="model cards from the registry: lineage, gate, decision record, limits, triggers")
    _common(cd)
    cd.add_argument("--version", help="one version (printed); default: every version, written to --out")
    cd.add_argument("--out", type=Path, default=Path("benchmarks/results/model_cards"))
    rb = sub.add_parser("rollback", help="drop the canary, or go back to the previous champion")
    _common(rb)
    _serving(rb)
    s = sub.add_parser("status", help="versions, lineage, gate records, aliases and the rollout file")
    _common(s)
    rt = sub.add_parser("retrain", help="labelled flywheel rows -> a new version from the champion -> Triton load -> "
                        "gate -> shadow (model_repository/lifecycle/flywheel.py)")
    _common(rt)
    rt.add_argument("labelled", nargs="+", type=Path, help="Label Studio JSON export(s) or JSONL text/label rows")
    rt.add_argument("--seed", type=int, default=7)
    rt.add_argument("--max-train", type=int, default=512, help="class-balanced replay rows of the training split")
    rt.add_argument("--max-steps", type=int, default=60, help="upper bound: the checkpoint kept is chosen on validation")
    rt.add_argument("--batch-size", type=int, default=32)
    rt.add_argument("--lr", type=float, default=3e-5)
    rt.add_argument("--train-top-layers", type=int, default=2, help="only the top N encoder layers learn (0 = all)")
    rt.add_argument("--extra-share", type=float, default=0.25, help="share of each batch from the flywheel rows")
    rt.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE", help="gate threshold override")
    rt.add_argument("--no-shadow", action="store_true", help="gate only; leave the rollout file alone")
    gate_arguments(rt)
    return p


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    repo = args.repository or args.lifecycle_dir / "triton"
    return repo, args.rollout_file or args.lifecycle_dir / "rollout.yaml"


def _registry(args: argparse.Namespace):
    from model_repository.lifecycle.registry import Registry

    return Registry(args.lifecycle_dir)


def run_gate_command(args: argparse.Namespace, thresholds: list[str], out: TextIO) -> int:
    """``mangaassist model gate`` / ``mangaassist eval --gate --challenger N``."""
    from model_repository.lifecycle.gate import parse_pairs
    from model_repository.lifecycle.answers import AnswerOptions
    from model_repository.lifecycle.gate import gate_and_record

    try:
        overrides = parse_pairs(thresholds, "--threshold")
        answers = AnswerOptions(golden=args.golden, sample=args.answer_sample, service_config=args.service_config)
        report = gate_and_record(args.triton, str(args.challenger), registry=_registry(args),
                                 data_dir=args.build_dir / "data", repo=_paths(args)[0], champion=args.champion,
                                 overrides=overrides,
                                 requests=args.requests, seconds=args.seconds, concurrency=args.concurrency,
                                 answers=answers)
    except (ValueError, GateRequired) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"gate: challenger {report.challenger} vs champion {report.champion}", file=out)
    for line in report.lines():
        print(line, file=out)
    print(f"gate: {'PASS' if report.passed else 'FAIL'} (recorded in the registry)", file=out)
    return EXIT_OK if report.passed else EXIT_GATE_FAILED


def retrain_spec(args: argparse.Namespace) -> Any:
    """The VersionSpec ``mangaassist retrain`` trains with (benchmarks/lifecycle/flywheel_generalisation.py reuses it:
    ``retrain_spec(parser().parse_args(["retrain", "-"]))`` is the shipped default)."""
    from model_repository.lifecycle import versions

    return versions.VersionSpec(seed=args.seed, max_train=args.max_train or None, max_steps=args.max_steps,
                                batch_size=args.batch_size, lr=args.lr, extra_share=args.extra_share,
                                train_top_layers=args.train_top_layers or None)


def _retrain(args: argparse.Namespace, repo: Path, rollout_file: Path, out: TextIO) -> int:
    from model_repository.lifecycle.gate import parse_pairs
    from model_repository.lifecycle import flywheel, versions
    from model_repository.lifecycle.answers import AnswerOptions

    spec = retrain_spec(args)
    reg = _registry(args)
    result = flywheel.retrain(
        args.labelled, build_dir=args.build_dir, repo=repo, registry=reg, lifecycle_dir=args.lifecycle_dir,
        triton_url=args.triton, spec=spec, gate_overrides=parse_pairs(args.threshold, "--threshold"),
        gate_kwargs={"requests": args.requests, "seconds": args.seconds, "concurrency": args.concurrency,
                     "answers": AnswerOptions(golden=args.golden, sample=args.answer_sample,
                                              service_config=args.service_config)},
        log=lambda line: print(line, file=out, flush=True))
    f = result.fixed
    print(f"retrain: version {result.version} from champion {result.champion}; flywheel rows {result.flywheel_rows} "
          f"({result.added} new): champion right on {f['champion_right']}/{f['n']}, version {result.version} on "
          f"{f['challenger_right']}/{f['n']} (fixed {f['fixed']}, broke {f['broken']}; rows it learnt)", file=out)
    print(f"retrain: {result.generalisation}", file=out)
    for line in result.gate.lines():
        print(line, file=out)
    if not result.gate.passed:
        print(f"retrain: gate FAIL -- version {result.version} stays out of the rollout", file=out)
        return EXIT_GATE_FAILED
    if not args.no_shadow:  # shadow beside what already runs: the stable version and a canary in flight stay
        import server.rollout.config as rollout_config

        current = rollout_config.read(rollout_file) if rollout_file.exists() else None
        data: dict = {"stable": current.stable if current else result.champion, "shadow": result.version}
        if current is not None and current.canary is not None:
            data["canary"] = {"version": current.canary.version, "percent": current.canary.percent}
        _write_rollout(rollout_file, data, reg, repo)
    where = "gated (--no-shadow: rollout file untouched)" if args.no_shadow else f"in shadow ({rollout_file})"
    print(f"retrain: gate PASS -- version {result.version} {where}; next: mangaassist model rollout --stable "
          f"{result.champion} --canary {result.version}:10, then promote", file=out)
    return EXIT_OK


def _write_rollout(path: Path, data: dict, registry, repo: Path) -> None:
    """Shape (server/rollout/config.py), version directories, gate records for the files served -- then an atomic
    write. Stable and canary must each have a passing gate record whose sha256 is the hash of the file in ``repo``
    (the repository Triton serves): a file swapped after its gate is refused."""
    import server.rollout.config as rollout_config
    from model_repository.lifecycle.gate import served_file

    config = rollout_config.parse(data)
    named = {config.stable, *(v for v in (config.shadow, config.canary and config.canary.version) if v)}
    if (repo / config.model).is_dir():
        missing = sorted(v for v in named if not (repo / config.model / v).is_dir())
        if missing:
            raise GateRequired(f"unknown version(s) {missing}: not in {repo / config.model}")
    for version in config.serving():
        registry.require_gate(config.model, version, served_file=served_file(repo, version, config.model))
    rollout_config.write(path, config)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = parser().parse_args(argv)
    repo, rollout_file = _paths(args)
    import server.rollout.config as rollout_config
    from model_repository.lifecycle import versions
    from model_repository.lifecycle.serving import LoadFailed

    try:
        if args.cmd == "baseline":
            if not (repo / versions.MODEL).is_dir():
                versions.lay_out(args.build_dir, repo)
            info = versions.register_baseline(args.build_dir, repo, _registry(args))
            print(f"{versions.MODEL} version {info.triton_version} registered as {CHAMPION}; repository {repo}", file=out)
            return EXIT_OK
        if args.cmd == "train":
            spec = versions.VersionSpec(
                parent=None if args.parent.lower() == "none" else args.parent, seed=args.seed,
                max_train=args.max_train or None, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
                shuffle_labels=args.shuffle_labels, layers=args.layers, quantize=args.quantize)
            info = versions.new_version(spec, build_dir=args.build_dir, repo=repo, registry=_registry(args),
                                        lifecycle_dir=args.lifecycle_dir)
            print(json.dumps({"version": info.triton_version, "lineage": info.lineage}, indent=2), file=out)
            if not args.triton:
                print("Triton loads the new version directory at (re)start, or with --triton URL (explicit mode)", file=out)
            _load(args, repo, out)
            return EXIT_OK
        if args.cmd == "gate":
            return run_gate_command(args, args.threshold, out)
        if args.cmd == "retrain":
            return _retrain(args, repo, rollout_file, out)
        reg = _registry(args)
        if args.cmd == "rollout":
            data: dict = {"stable": args.stable}
            if args.shadow:
                data["shadow"] = args.shadow
            if args.canary:
                version, _, pct = args.canary.partition(":")
                data["canary"] = {"version": version, "percent": pct or "0"}
            _write_rollout(rollout_file, data, reg, repo)
            print(f"wrote {rollout_file}: {data}", file=out)
            return EXIT_OK
        if args.cmd == "promote":
            from model_repository.lifecycle.gate import served_file

            import getpass

            previous = reg.promote(versions.MODEL, args.version, served_file=served_file(repo, args.version),
                                   approved_by=args.approved_by or getpass.getuser(), reason=args.reason)
            _write_rollout(rollout_file, {"stable": args.version}, reg, repo)
            if (repo / versions.MODEL).is_dir():  # the ensemble (the no-rollout path) follows at Triton's next load
                versions.pin(repo, champion=args.version)
                _load(args, repo, out)
            print(f"{versions.MODEL}: champion {previous} -> {args.version}; {rollout_file} stable = {args.version}", file=out)
            return EXIT_OK
        if args.cmd == "card":
            from model_repository.lifecycle import cards

            if args.version:
                print(cards.card(reg, versions.MODEL, args.version), file=out)
            else:
                for path in cards.write_cards(reg, versions.MODEL, args.out):
                    print(f"wrote {path}", file=out)
            return EXIT_OK
        if args.cmd == "rollback":
            current = rollout_config.read(rollout_file) if rollout_file.exists() else None
            if current is not None and current.canary is not None:
                _write_rollout(rollout_file, {"stable": current.stable, **({"shadow": current.shadow} if current.shadow else {})}, reg, repo)
                print(f"canary {current.canary.version} removed; stable stays {current.stable}", file=out)
                return EXIT_OK
            previous = reg.rollback(versions.MODEL)
            _write_rollout(rollout_file, {"stable": previous}, reg, repo)
            if (repo / versions.MODEL).is_dir():
                versions.pin(repo, champion=previous)
                _load(args, repo, out)
            print(f"{versions.MODEL}: champion rolled back to {previous}; {rollout_file} stable = {previous}", file=out)
            return EXIT_OK
        if args.cmd == "status":
            rows = []
            for v in reg.versions(versions.MODEL):
                rows.append({"version": v.triton_version, "aliases": list(v.aliases), "lineage": v.lineage,
                             "gate": {k.split(".", 1)[1]: val for k, val in v.tags.items() if k.startswith("gate.")}})
            rollout = rollout_file.read_text() if rollout_file.exists() else None
            print(json.dumps({"model": versions.MODEL, "versions": rows, "rollout_file": str(rollout_file),
                              "rollout": rollout}, indent=2), file=out)
            return EXIT_OK
    except (GateRequired, rollout_config.RolloutRefused, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_REFUSED
    except LoadFailed as err:  # the change is made; a Triton did not load it
        print(f"error: {err}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_REFUSED


if __name__ == "__main__":
    raise SystemExit(main())
