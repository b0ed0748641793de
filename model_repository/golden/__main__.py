"""``python -m model_repository.golden --data DIR --out FILE [--seed N]``: write the golden set and print its counts."""

from __future__ import annotations

import argparse
import pathlib
import sys

from model_repository.golden.generate import DEFAULT_SEED, write_golden


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_repository.golden", description=__doc__)
    parser.add_argument("--data", type=pathlib.Path, default=pathlib.Path(".build/data"),
                        help="generated data directory (python -m model_repository.datagen --out DIR)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(".build/golden/golden.jsonl"))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    report = write_golden(args.data, args.out, seed=args.seed)
    print(f"{report['records']} records -> {report['path']}  ({', '.join(f'{k} {v}' for k, v in report['source'].items())})")
    for name in ("intent", "complexity", "edge"):
        print(f"{name:11s}", "  ".join(f"{k} {v}" for k, v in report[name].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
