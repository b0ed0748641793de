"""Closed-loop load from Python: ``concurrency`` callers, each sending its next message as soon as the last one
answered, for ``seconds``. The same client drives every non-Triton stack (the naive HTTP server, the plain
gRPC server, the service's Classify), so their ratios compare servers, not clients. (Triton itself is driven by
perf_analyzer.) One text per call, messages taken in turn from the fixed list.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Awaitable, Callable, Sequence

from benchmarks import common

Call = Callable[[str], Awaitable[None]]


async def run(make_call: Callable[[], Awaitable[tuple[Call, Callable[[], Awaitable[None]]]]], texts: Sequence[str],
              *, concurrency: int, seconds: float, warmup: int = 5) -> dict[str, Any]:
    """``make_call()`` -> (call(text), close()) for one caller (its own connection for HTTP, a shared channel
    is fine for gRPC). Returns throughput (answers/s), latency percentiles (ms) and the error count."""
    callers = [await make_call() for _ in range(concurrency)]
    for i in range(warmup):
        await callers[0][0](texts[i % len(texts)])
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = 0
    stop_at = time.perf_counter() + seconds

    async def worker(call: Call) -> None:
        nonlocal counter
        while time.perf_counter() < stop_at:
            text = texts[counter % len(texts)]
            counter += 1
            start = time.perf_counter()
            try:
                await call(text)
            except Exception as err:  # noqa: BLE001 -- a benchmark counts every failure kind
                key = type(err).__name__ + (f":{err.code().name}" if hasattr(err, "code") else "")
                errors[key] = errors.get(key, 0) + 1
                continue
            latencies.append((time.perf_counter() - start) * 1000.0)

    started = time.perf_counter()
    await asyncio.gather(*(worker(call) for call, _ in callers))
    wall = time.perf_counter() - started
    for _, close in callers:
        await close()
    return {"concurrency": concurrency, "throughput": round(len(latencies) / wall, 1), "answers": len(latencies),
            "errors": errors, "error_share": round(sum(errors.values()) / max(1, len(latencies) + sum(errors.values())), 3),
            **common.latency_summary(latencies)}


def grpc_classify(target: str, timeout_s: float = 10.0):
    """Callers of ``MangaAssist/Classify`` with one text (the service, or the plain gRPC server); one channel."""
    import grpc
    from mangaassist.v1 import mangaassist_pb2 as pb
    from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

    shared: dict[str, Any] = {}  # the channel, made inside the running loop (aio channels bind to it)
    opened = 0

    async def make():
        nonlocal opened
        if not shared:
            shared["channel"] = grpc.aio.insecure_channel(target)
            shared["stub"] = pb_grpc.MangaAssistStub(shared["channel"])
        stub = shared["stub"]
        opened += 1

        async def call(text: str) -> None:
            reply = await stub.Classify(pb.ClassifyRequest(texts=[text]), timeout=timeout_s)
            if not reply.results or not reply.results[0].intent:
                raise RuntimeError("empty classification")

        async def close() -> None:
            nonlocal opened
            opened -= 1
            if opened == 0:
                await shared.pop("channel").close()
                shared.clear()

        return call, close

    return make


def http_classify(host: str, port: int, path: str = "/classify"):
    """Callers of ``POST path {"text": ...}`` over HTTP/1.1 keep-alive, one connection each (asyncio streams:
    a few lines instead of a client library, and as cheap as a client gets in Python)."""

    async def make():
        reader, writer = await asyncio.open_connection(host, port)

        async def call(text: str) -> None:
            body = json.dumps({"text": text}).encode()
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            )
            status, length = parse_head(await reader.readuntil(b"\r\n\r\n"))
            payload = await reader.readexactly(length)
            if status != 200 or b"intent" not in payload:
                raise RuntimeError(f"HTTP {status}")

        async def close() -> None:
            writer.close()

        return call, close

    return make


def parse_head(head: bytes) -> tuple[int, int]:
    """(status, Content-Length) of an HTTP/1.1 response head."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return status, length
