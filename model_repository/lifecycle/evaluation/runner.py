"""Sends the golden set to a running service through :class:`clients.sdk.AsyncMangaAssistClient`.

Each record gets its own session (``eval-<id>``) so no record sees another's conversation. At most
``concurrency`` calls are in flight; each has its own deadline. A call that fails is kept as an
:class:`Outcome` with its gRPC code (it then fails every dimension). Time to first streamed text is
measured afterwards, over ChatStream, on a deterministic sample, in fresh sessions (``eval-stream-<id>``).
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Sequence, TextIO

from google.protobuf.json_format import MessageToDict

from clients.errors import MangaAssistError
from model_repository.lifecycle.evaluation.dimensions import GoldenRecord, Outcome
from clients.sdk import AsyncMangaAssistClient

PROGRESS_EVERY = 50


@dataclass
class RunResult:
    outcomes: list[Outcome]
    ttft_ms: list[float | None] = field(default_factory=list)  # None: the stream sent no text before `final`
    describe: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0


async def run_golden(
    records: Sequence[GoldenRecord],
    *,
    target: str,
    token: str | None = None,
    concurrency: int = 4,
    timeout: float = 10.0,
    stream_sample: int = 100,
    progress: TextIO | None = None,
) -> RunResult:
    """Describe the service, answer every record, then time the first streamed text on a sample."""
    progress = progress or sys.stderr
    started = time.perf_counter()
    async with AsyncMangaAssistClient(target, token=token, timeout=timeout) as client:
        describe = MessageToDict(await client.describe(), preserving_proto_field_name=True)
        gate = asyncio.Semaphore(max(1, concurrency))
        done = 0

        async def one(record: GoldenRecord) -> Outcome:
            nonlocal done
            async with gate:
                outcome = await _chat(client, record)
            done += 1
            if done % PROGRESS_EVERY == 0 or done == len(records):
                print(f"eval: {done}/{len(records)} answered ({time.perf_counter() - started:.1f}s)", file=progress, flush=True)
            return outcome

        outcomes = list(await asyncio.gather(*(one(r) for r in records)))
        sample = stream_sample_of(records, stream_sample)
        ttft: list[float | None] = []
        for i in range(0, len(sample), max(1, concurrency)):
            batch = sample[i : i + max(1, concurrency)]
            ttft += await asyncio.gather(*(_first_text_ms(client, r) for r in batch))
    return RunResult(outcomes, ttft, describe, round(time.perf_counter() - started, 2))


def stream_sample_of(records: Sequence[GoldenRecord], n: int) -> list[GoldenRecord]:
    """``n`` records chosen by a hash of their id: the same sample every run, spread over the set."""
    ranked = sorted(records, key=lambda r: hashlib.sha1(r.id.encode()).hexdigest())
    return ranked[: max(0, n)]


async def _chat(client: AsyncMangaAssistClient, record: GoldenRecord) -> Outcome:
    t0 = time.perf_counter()
    try:
        response = await client.chat(record.message, session_id=f"eval-{record.id}", request_id=f"eval-{record.id}",
                                     customer_id=record.customer_id)
    except MangaAssistError as err:
        return Outcome(record, error=err.code.name, client_ms=round((time.perf_counter() - t0) * 1000, 2))
    return Outcome(record, response=response, client_ms=round((time.perf_counter() - t0) * 1000, 2))


async def _first_text_ms(client: AsyncMangaAssistClient, record: GoldenRecord) -> float | None:
    """Milliseconds until the first message with a non-empty delta (None if none came, or the call failed)."""
    t0 = time.perf_counter()
    first: float | None = None
    try:
        async for item in client.chat_stream(record.message, session_id=f"eval-stream-{record.id}",
                                             customer_id=record.customer_id):
            if first is None and item.WhichOneof("event") == "delta" and item.delta:
                first = round((time.perf_counter() - t0) * 1000, 2)
    except MangaAssistError:
        return None
    return first
