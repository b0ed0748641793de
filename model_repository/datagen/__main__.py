"""``python -m model_repository.datagen --out DIR [--seed N]``: write the generated data set."""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from model_repository.datagen import DEFAULT_SEED, generate_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_repository.datagen", description=__doc__)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(".build/data"),
                        help="output directory (default: .build/data)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default: {DEFAULT_SEED})")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    paths = generate_all(args.out, seed=args.seed)
    for name, path in paths.items():
        with path.open(encoding="utf-8") as f:
            n = sum(1 for _ in f)
        print(f"{name:20s} {n:6d}  {path}")
    print(f"generated in {time.perf_counter() - start:.1f}s (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
