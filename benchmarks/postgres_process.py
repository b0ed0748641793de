"""A real PostgreSQL 15 for tests and benchmarks (like sessions/redis_process.py for Redis): initdb into a temp dir, start on a free port in 51300-51399, stop after.

The server refuses to run as root, so as root it runs as the ``postgres`` user (``runuser``); set-up installs
Debian's ``postgresql`` (docs/running-and-testing.md). ``skip_reason()`` says why it cannot run here (no binaries)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

def _bin_dir() -> Path:
    """``PG_BIN``, else the newest ``/usr/lib/postgresql/<major>/bin`` (Debian's layout) that has ``initdb``."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    majors = Path("/usr/lib/postgresql").glob("*/bin/initdb")
    found = sorted(majors, key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


BIN = _bin_dir()


def skip_reason() -> str | None:
    if not (BIN / "initdb").is_file():
        return f"PostgreSQL server binaries not found in {BIN} (set PG_BIN; bash scripts/setup.sh installs postgresql)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser: postgres cannot be started"
    return None


def _free_port(lo: int = 51300, hi: int = 51400) -> int:
    for port in range(lo, hi):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in 51300-51399")


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def running_postgres(dbname: str = "mangaassist") -> Iterator[str]:
    """Yield a DSN for a fresh database on a private server."""
    root = Path(tempfile.mkdtemp(prefix="pg-test-"))
    data = root / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
    port = _free_port()
    subprocess.run(_as_postgres([str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]),
                   check=True, capture_output=True)
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        base = f"host=127.0.0.1 port={port} user=postgres"
        deadline = time.monotonic() + 20
        import psycopg

        while True:
            try:
                with psycopg.connect(base + " dbname=postgres", autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {dbname}")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield f"{base} dbname={dbname}"
    finally:
        subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def outage(dsn: str) -> Iterator[None]:
    """The server of ``dsn`` (one :func:`running_postgres` started) stopped for the body, then started again on
    the same port and data directory: a PostgreSQL outage and its recovery."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        data = Path(conn.execute("SHOW data_directory").fetchone()[0])
        port = conn.execute("SHOW port").fetchone()[0]
    root = data.parent
    subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                   check=True, capture_output=True)
    try:
        yield
    finally:
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"),
                                     "-w", "start"]), check=True, capture_output=True)
