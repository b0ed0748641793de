"""Bring up the whole non-LLM stack for a service benchmark: tritonserver on the built CPU repository,
the catalog, the vector index, and the ensemble service itself as its own process
(``python -m benchmarks.service.serve``: the production wiring, see that module for why not ``python -m
server``) configured by a generated settings file.

* catalog: ``<build>/index/catalog.sqlite`` when the build has one, else built from ``<build>/data``
  into the scratch directory (the build's writer, ``model_repository.index.catalog.build_catalog``);
* index: the build's FAISS index (``<build>/index``) when present, else a *benchmark index* built from
  the adapter step's document vectors (``models/embedding_adapter/doc_vectors.npy``, one chunk per
  document, same embedder): the same shape of work (flat inner-product search over ~6k 384-d vectors);
* every intent is routed to the template tier (no LLM runs), LLM tiers are disabled; guardrails stay on.

The benchmark client runs in the calling process; client, service and Triton share the machine's cores.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import common
from server.intents import INTENT_LABELS

log = logging.getLogger("benchmarks.service")

#: Budgets so generous that no stage is ever skipped: both sides of an overhead comparison do equal work.
GENEROUS_BUDGETS = {
    "total_ms": 30000.0, "classify_ms": 10000.0, "embed_ms": 10000.0, "adapter_ms": 10000.0,
    "retrieve_ms": 10000.0, "rerank_ms": 20000.0, "rerank_min_remaining_ms": 1.0,
}


def ensure_catalog(build_dir: Path, scratch: Path) -> Path:
    existing = build_dir / "index" / "catalog.sqlite"
    if existing.is_file():
        return existing
    from model_repository.index.catalog import build_catalog

    db = scratch / "catalog.sqlite"
    if not db.is_file():
        data = build_dir / "data"
        orders = data / "orders.jsonl"
        series = data / "series.jsonl"
        build_catalog(data / "catalog.jsonl", orders if orders.is_file() else None, db, series if series.is_file() else None)
    return db


def ensure_index(build_dir: Path, scratch: Path) -> tuple[Path, str]:
    """(FAISS index directory, what it is)."""
    existing = build_dir / "index"
    if (existing / "index.faiss").is_file():
        return existing, "build index (<build>/index)"
    from server.retrieval.base import Chunk
    from server.retrieval.faiss_index import FaissIndex

    out = scratch / "bench_index"
    if not (out / "index.faiss").is_file():
        docs = common.read_jsonl(build_dir / "data" / "documents.jsonl")
        vectors = np.load(build_dir / "models" / "embedding_adapter" / "doc_vectors.npy").astype(np.float32)
        if len(vectors) != len(docs):
            raise RuntimeError(f"doc_vectors.npy has {len(vectors)} rows for {len(docs)} documents")
        chunks = [
            Chunk(chunk_id=f"{d['doc_id']}#0", doc_id=d["doc_id"], source_type=d["source_type"], text=d["text"], asin=d.get("asin"))
            for d in docs
        ]
        index = FaissIndex(vectors.shape[1])
        index.add(chunks, vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
        index.save(out)
    return out, "benchmark index: one chunk per document, vectors from models/embedding_adapter/doc_vectors.npy"


@dataclass
class Stack:
    build_dir: Path
    repo: Path
    scratch: Path
    generous_budgets: bool = True
    log_level: str = "WARNING"
    triton: Any = None
    service: subprocess.Popen | None = None
    target: str = ""
    index_dir: Path | None = None
    index_kind: str = ""
    catalog_db: Path | None = None
    settings_file: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)
    port: int = 0  # the service's port (0: a free one)
    owns_triton: bool = True  # False when the caller passed a running ``triton`` (it stops that one itself)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # settings section -> values, applied last

    def settings(self, port: int) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "server": {"host": "127.0.0.1", "port": port, "metrics_port": -1, "max_concurrency": 256},
            "triton": {"url": self.triton.grpc_url},
            "retrieval": {"backend": "faiss", "index_dir": str(self.index_dir), "catalog_db": str(self.catalog_db)},
            "routing": {"tiers": {intent: "template" for intent in INTENT_LABELS}},
            "llm": {"enabled": False},
            "telemetry": {"log_level": self.log_level, "otel_exporter": "none"},
        }
        if self.generous_budgets:
            cfg["budgets"] = dict(GENEROUS_BUDGETS)
        for section, values in self.overrides.items():
            cfg[section] = {**cfg.get(section, {}), **values}
        return cfg

    def start(self) -> "Stack":
        from server.triton_runtime import TritonServer, free_port

        self.scratch.mkdir(parents=True, exist_ok=True)
        self.catalog_db = ensure_catalog(self.build_dir, self.scratch)
        self.index_dir, self.index_kind = ensure_index(self.build_dir, self.scratch)
        started = time.perf_counter()
        if self.triton is None:
            self.triton = TritonServer(self.repo, startup_timeout_s=600).start()  # stops itself on failure
            log.info("tritonserver ready on %s in %.1fs", self.triton.grpc_url, time.perf_counter() - started)
        else:
            self.owns_triton = False
        port = self.port or free_port()
        settings = self.settings(port)
        self.settings_file = self.scratch / "service_settings.json"  # JSON is YAML
        self.settings_file.write_text(json.dumps(settings, indent=2))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MANGAASSIST_")}
        env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(common.ROOT)})
        log_file = open(self.scratch / "service.log", "wb")  # noqa: SIM115 -- owned by the child
        self.service = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.service.serve", "--config", str(self.settings_file)],
            cwd=common.ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
        log_file.close()
        self.target = f"127.0.0.1:{port}"
        try:
            self._wait_ready(120.0)
        except BaseException:
            self.stop()
            raise
        self.info = {
            "triton_repository": str(self.repo),
            "index": str(self.index_dir),
            "index_kind": self.index_kind,
            "catalog_db": str(self.catalog_db),
            "service_settings": settings,
            "service_pid": self.service.pid,
        }
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        from clients.sdk import MangaAssistClient

        deadline = time.monotonic() + timeout_s
        with MangaAssistClient(self.target, timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.service is not None and self.service.poll() is not None:
                    raise RuntimeError(f"the service exited with {self.service.returncode}:\n{self.service_log()}")
                with contextlib.suppress(Exception):
                    if client.health("readiness") == "SERVING":
                        return
                time.sleep(0.25)
        raise RuntimeError(f"the service was not ready after {timeout_s:.0f}s:\n{self.service_log()}")

    def service_log(self, lines: int = 40) -> str:
        path = self.scratch / "service.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else "(no log)"

    def stop(self) -> None:
        if self.service is not None and self.service.poll() is None:
            self.service.terminate()  # SIGTERM: the service drains, then exits
            try:
                self.service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait(timeout=10)
        self.service = None
        if self.triton is not None and self.owns_triton:
            self.triton.stop()
        self.triton = None

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
