"""``python -m model_repository {build,configs,assemble}``: the model build CLI."""

from __future__ import annotations

import argparse
import difflib
from dataclasses import replace
import sys
from pathlib import Path

from model_repository import spec
from model_repository.build import DEFAULT_BUILD_DIR, PKG, BuildConfig, Builder


def write_configs(check: bool = False) -> int:
    """Render the committed ``model_repository/{cpu,gpu}/*/config.pbtxt`` (or check they are current)."""
    stale = []
    for flavour in spec.FLAVOURS:
        for name, cfg in spec.render(flavour).items():
            path = PKG / flavour / name / "config.pbtxt"
            text = spec.to_pbtxt(cfg)
            current = path.read_text() if path.exists() else ""
            if current != text:
                stale.append(path)
                if check:
                    sys.stdout.writelines(difflib.unified_diff(current.splitlines(True), text.splitlines(True), str(path), "rendered"))
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text)
    if check and stale:
        print(f"{len(stale)} committed config(s) differ from spec.py; run `python -m model_repository configs`")
        return 1
    print(f"{'checked' if check else 'wrote'} configs for {len(spec.served_model_names())} models x {len(spec.FLAVOURS)} flavours")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_repository", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="generate data, train, export and assemble both Triton repositories (cached)")
    b.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR)
    b.add_argument("--quick", action="store_true", help="tiny training runs for smoke tests (models are not accurate)")
    b.add_argument("--llm-weights", choices=("fp32", "int8", "int4"), default=None,
                   help="weights llm_small serves (default fp32; benchmarks/results/llm/ measures them)")
    c = sub.add_parser("configs", help="render model_repository/{cpu,gpu}/*/config.pbtxt from spec.py")
    c.add_argument("--check", action="store_true", help="exit 1 if the committed configs are stale")
    a = sub.add_parser("assemble", help="lay out a Triton repository from already-built models")
    a.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR)
    a.add_argument("--flavour", choices=spec.FLAVOURS, default="cpu")
    a.add_argument("--dest", type=Path)
    a.add_argument("--no-dynamic-batching", action="store_true")
    a.add_argument("--llm-weights", choices=("fp32", "int8", "int4"), default=None,
                   help="weights llm_small serves (built by `build --llm-weights`)")
    args = parser.parse_args(argv)

    if args.cmd == "configs":
        return write_configs(check=args.check)
    weights = {"llm_weights": args.llm_weights} if args.llm_weights else {}
    if args.cmd == "build":
        config = BuildConfig.quick_config() if args.quick else BuildConfig()
        Builder(args.build_dir, replace(config, **weights)).build_all()
        return 0
    dest = Builder(args.build_dir, BuildConfig(**weights)).assemble(args.flavour, args.dest, dynamic_batching=not args.no_dynamic_batching)
    print(dest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
