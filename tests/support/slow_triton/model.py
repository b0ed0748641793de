"""A python-backend model for reliability tests: it answers the service's model contract for one role and
holds each request as long as its text asks (``hold:<ms>`` for the classifier and embedder roles, ``slowrank:<ms>``
in the reranker's QUERY -- its own word, so a chat can hold its rerank call alone), watching Triton's cancellation flag.

Loaded by a real tritonserver (``tests/support/slow_triton/__init__.py`` lays out the repository), so what a
test observes is what Triton itself saw: every request's id, the per-request queue ``timeout`` Triton was
given, and how each one ended (answered, or cancelled -- by the caller's cancel or its gRPC deadline).

Config parameters: ``role`` (classifier | embedder | adapter | reranker) and ``events`` (a JSON-lines file).
One line per event: ``{"model", "id", "event": "start" | "done" | "cancelled", "t": CLOCK_MONOTONIC seconds
(system-wide, so tests compare it with their own time.monotonic()), "hold_ms", "timeout_us"}``.
"""

from __future__ import annotations

import json
import os
import re
import time

import numpy as np
import triton_python_backend_utils as pb_utils

_HOLD = re.compile(rb"hold:(\d+)")
_RERANK_HOLD = re.compile(rb"slowrank:(\d+)")
_POLL_S = 0.005
_WIDTH = {"classifier": 8, "embedder": 384, "adapter": 384, "reranker": 1}
_OUTPUT = {"classifier": "PROBS", "embedder": "EMBEDDING", "adapter": "ADAPTED", "reranker": "SCORE"}


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.name = args["model_name"]
        self.role = params["role"]["string_value"]
        self.events = params["events"]["string_value"]

    def _log(self, request, event: str, hold_ms: int) -> None:
        timeout = getattr(request, "timeout", None)
        line = {"model": self.name, "id": request.request_id(), "event": event, "t": time.monotonic(),
                "hold_ms": hold_ms, "timeout_us": int(timeout()) if timeout else None}
        with open(self.events, "a") as f:  # one write per line: concurrent instances do not interleave
            f.write(json.dumps(line) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _rows(self, request) -> tuple[int, int]:
        """(rows, the longest hold any text of the request asks for)."""
        name = "TEXT" if self.role in ("classifier", "embedder") else ("QUERY" if self.role == "reranker" else "EMBEDDING")
        tensor = pb_utils.get_input_tensor_by_name(request, name).as_numpy()
        hold = 0
        if self.role in ("classifier", "embedder", "reranker"):  # the adapter answers at once
            pattern = _RERANK_HOLD if self.role == "reranker" else _HOLD
            for value in tensor.reshape(-1):
                match = pattern.search(value if isinstance(value, bytes) else str(value).encode())
                if match:
                    hold = max(hold, int(match.group(1)))
        return tensor.shape[0], hold

    def _answer(self, rows: int):
        out = np.zeros((rows, _WIDTH[self.role]), np.float32)
        if self.role == "classifier":
            out[:, 0] = 1.0  # product_question, certain
        elif self.role in ("embedder", "adapter"):
            out[:, 0] = 1.0
        return pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(_OUTPUT[self.role], out)])

    def execute(self, requests):
        started = time.monotonic()
        pending = {}
        for i, request in enumerate(requests):
            rows, hold = self._rows(request)
            self._log(request, "start", hold)
            pending[i] = (request, rows, hold)
        responses = [None] * len(requests)
        while pending:
            now = time.monotonic()
            for i, (request, rows, hold) in list(pending.items()):
                if request.is_cancelled():
                    self._log(request, "cancelled", hold)
                    responses[i] = pb_utils.InferenceResponse(
                        error=pb_utils.TritonError("cancelled", pb_utils.TritonError.CANCELLED))
                    del pending[i]
                elif (now - started) * 1000 >= hold:
                    self._log(request, "done", hold)
                    responses[i] = self._answer(rows)
                    del pending[i]
            if pending:
                time.sleep(_POLL_S)
        return responses
