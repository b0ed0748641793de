"""Run the ``mangaassist`` CLI in-process against a test server, the way a user runs it from a shell."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from clients import cli


async def classify_file(target: str, texts: list[str], tmp_path: Path) -> tuple[int, list[dict]]:
    """``mangaassist --target T classify --file F`` at the CLI's defaults (batch, deadline) over ``texts``, one a
    line; (exit code, the JSON lines it printed). Runs in a thread: the CLI's client is the blocking one."""
    path = tmp_path / "classify_input.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = io.StringIO()
    rc = await asyncio.to_thread(cli.main, ["--target", target, "classify", "--file", str(path)], stdout=out)
    return rc, [json.loads(line) for line in out.getvalue().splitlines()]
