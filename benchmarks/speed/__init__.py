"""Serving speed (issue 11): where a lone request's time goes, and the served classifier against its ceiling
and against simpler stacks, on the same models and the same 200 hand-written messages
(``tests/fixtures/intents_handwritten.jsonl``, which the classifier never saw).

    python -m benchmarks.speed                 # the comparison: table, ratios, plot -> benchmarks/results/speed/
    python -m benchmarks.speed.breakdown       # a lone request, hop by hop (also part of the comparison run)
    pytest benchmarks/micro --benchmark-only   # the hot pure-Python pieces (pytest-benchmark)
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import common

HANDWRITTEN = common.ROOT / "tests" / "fixtures" / "intents_handwritten.jsonl"
RESULTS = common.DEFAULT_RESULTS_DIR / "speed"
#: ports this benchmark's processes take (Triton grpc/http/metrics, then the servers it starts)
PORT_BASE = 51150


def handwritten_texts(path: Path = HANDWRITTEN) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def request_path_repo(build_dir: Path, scratch: Path, flavour: str = "cpu") -> Path:
    """A repository of symlinks to the built request-path models (no LLM, no hallucination scorer)."""
    from benchmarks.chaos.process import request_path_build

    return request_path_build(build_dir, scratch / "request_path", flavour) / "triton" / flavour


def start_triton(repo: Path, port: int, *, models: tuple[str, ...] = ()):
    """tritonserver on ``repo`` at ``port`` (grpc), ``port+1`` (http), ``port+2`` (metrics); ``models``:
    load only these (explicit model control; an ensemble brings its steps)."""
    from server.triton_runtime import TritonServer

    extra = ("--model-control-mode=explicit", *(f"--load-model={m}" for m in models)) if models else ()
    return TritonServer(repo, grpc_port=port, http_port=port + 1, metrics_port=port + 2, startup_timeout_s=600,
                        extra_args=extra).start()
