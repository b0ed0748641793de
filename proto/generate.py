"""Regenerate the Python stubs for ``proto/mangaassist/v1/*.proto``.

Run from the repository root::

    python -m proto.generate            # writes next to the .proto files (the committed stubs)
    python -m proto.generate --out DIR  # writes into DIR (used by the test that checks the stubs are current)

Equivalent to ``python -m grpc_tools.protoc -I proto --python_out=proto --grpc_python_out=proto
--pyi_out=proto proto/mangaassist/v1/mangaassist.proto``. The output depends only on the .proto files and
the pinned grpcio-tools version, so regenerating gives byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIRS = ("mangaassist", "mangaassist/v1")


def proto_files(root: Path = PROTO_ROOT) -> list[str]:
    """The .proto files, as protoc import paths relative to ``root`` (sorted, for reproducible runs)."""
    return sorted(p.relative_to(root).as_posix() for p in (root / "mangaassist").rglob("*.proto"))


def generate(out_dir: Path | str = PROTO_ROOT, root: Path = PROTO_ROOT) -> list[Path]:
    """Run protoc (from grpcio-tools) and return the generated files."""
    from grpc_tools import protoc  # build-time dependency only

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    files = proto_files(root)
    args = [
        "grpc_tools.protoc",
        f"-I{root}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--pyi_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed for {files}")
    for package in PACKAGE_DIRS:
        init = out / package / "__init__.py"
        if not init.exists():
            init.write_text("")
    generated = []
    for f in files:
        stem = out / f[: -len(".proto")]
        generated += [stem.with_name(stem.name + suffix) for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")]
    return generated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROTO_ROOT, help="output root (default: proto/)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
