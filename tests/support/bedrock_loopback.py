"""A loopback HTTP server that speaks the Bedrock runtime wire format, for retry/timeout tests.

``botocore.stub.Stubber`` bypasses botocore's retry loop and timeouts, so tests that must see one retry
after a 429, no retry after a 408, or a read timeout cut the call point a *real* boto3 client at this
server (``endpoint_url=server.endpoint_url``, dummy credentials, region us-east-1).

* ``POST /model/{modelId}/converse``        -> rest-json ConverseResponse
* ``POST /model/{modelId}/converse-stream`` -> ``application/vnd.amazon.eventstream`` (own encoder below:
  prelude [total length, headers length, prelude CRC32], headers, JSON payload, message CRC32), sent with
  chunked transfer encoding, one flush per event
* errors: HTTP status + ``x-amzn-ErrorType`` header + ``{"message": ...}`` body

Behaviour is scripted per request (FIFO): :meth:`respond`, :meth:`error`, :meth:`hang`, :meth:`stall`;
when the script is empty the default answer is sent. Every request is recorded (:attr:`requests`).
"""

from __future__ import annotations

import json
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

DEFAULT_TEXT = '{"type": "text", "text": "Hello from the loopback model."}\n{"type": "end"}\n'

# --- event-stream encoder --------------------------------------------------------------------------

_STRING_HEADER = 7


def _header(name: str, value: str) -> bytes:
    n, v = name.encode("utf-8"), value.encode("utf-8")
    return struct.pack(">B", len(n)) + n + struct.pack(">B", _STRING_HEADER) + struct.pack(">H", len(v)) + v


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude, prelude CRC, headers, payload, message CRC (all big-endian)."""
    header_bytes = b"".join(_header(k, v) for k, v in headers.items())
    total = 4 + 4 + 4 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_bytes))
    prelude_crc = struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + prelude_crc + header_bytes + payload
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


def encode_event(event_type: str, payload: dict[str, Any]) -> bytes:
    return encode_message(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(payload).encode("utf-8"),
    )


def encode_exception(exception_type: str, message: str) -> bytes:
    return encode_message(
        {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"},
        json.dumps({"message": message}).encode("utf-8"),
    )


# --- script ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Behaviour:
    kind: str  # "respond" | "error" | "hang" | "stall"
    text: str = DEFAULT_TEXT
    input_tokens: int = 120
    output_tokens: int = 30
    status: int = 200
    error_type: str = ""
    message: str = ""
    seconds: float = 0.0
    deltas: tuple[str, ...] | None = None  # stream: exact deltas (default: text split in ~16-char pieces)
    stall_after: int = 0  # "stall": deltas sent before the stream goes quiet
    stop_reason: str = "end_turn"


@dataclass(frozen=True)
class RecordedRequest:
    operation: str  # "converse" | "converse-stream"
    model_id: str
    body: dict[str, Any]
    headers: dict[str, str]
    received_at: float = field(default_factory=time.monotonic)

    @property
    def system_text(self) -> str:
        return "".join(b.get("text", "") for b in self.body.get("system", []))

    @property
    def last_user_text(self) -> str:
        msgs = self.body.get("messages", [])
        return "".join(b.get("text", "") for b in msgs[-1]["content"]) if msgs else ""


def _split(text: str, size: int = 16) -> tuple[str, ...]:
    return tuple(text[i : i + size] for i in range(0, len(text), size)) or ("",)


class BedrockLoopback:
    def __init__(self, default_text: str = DEFAULT_TEXT) -> None:
        self.default = Behaviour("respond", text=default_text)
        self._script: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0  # responses the client hung up on before they were written out (a cancel, a timeout)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # scripting
    def respond(self, text: str = DEFAULT_TEXT, *, input_tokens: int = 120, output_tokens: int = 30,
                deltas: tuple[str, ...] | None = None, stop_reason: str = "end_turn") -> "BedrockLoopback":
        return self._push(Behaviour("respond", text=text, input_tokens=input_tokens, output_tokens=output_tokens,
                                    deltas=deltas, stop_reason=stop_reason))

    def error(self, status: int, error_type: str, message: str = "scripted error") -> "BedrockLoopback":
        return self._push(Behaviour("error", status=status, error_type=error_type, message=message))

    def hang(self, seconds: float) -> "BedrockLoopback":
        """Accept the request, say nothing for ``seconds``, then answer with the default."""
        return self._push(Behaviour("hang", seconds=seconds))

    def stall(self, after_deltas: int, seconds: float, text: str = DEFAULT_TEXT) -> "BedrockLoopback":
        """Stream: send ``after_deltas`` deltas, then go quiet for ``seconds`` before finishing."""
        return self._push(Behaviour("stall", text=text, stall_after=after_deltas, seconds=seconds))

    def _push(self, b: Behaviour) -> "BedrockLoopback":
        with self._lock:
            self._script.append(b)
        return self

    def _next(self) -> Behaviour:
        with self._lock:
            return self._script.popleft() if self._script else self.default

    def count(self, operation: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if operation is None or r.operation == operation)

    # lifecycle
    @property
    def endpoint_url(self) -> str:
        assert self._server is not None, "start() the loopback first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "BedrockLoopback":
        owner = self

        class Handler(_Handler):
            loopback = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="bedrock-loopback", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()  # wakes hanging handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "BedrockLoopback":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    loopback: BedrockLoopback

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):  # reset while waiting for the next request on the
            self._client_gone()                          # connection: the client closed it with a response unread

    def _client_gone(self) -> None:
        """The client gave up on a response (timeout, cancel): its connection died under us."""
        self.close_connection = True
        with self.loopback._lock:
            self.loopback.disconnects += 1

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length) if length else b""
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 3 or parts[0] != "model" or parts[2] not in ("converse", "converse-stream"):
            self._send_error(404, "ResourceNotFoundException", f"unknown path {self.path}")
            return
        op, model_id = parts[2], unquote(parts[1])
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_unparsable": raw.decode("utf-8", "replace")}
        lb = self.loopback
        with lb._lock:
            lb.requests.append(RecordedRequest(op, model_id, body, {k.lower(): v for k, v in self.headers.items()}))
        b = lb._next()
        try:
            if b.kind == "error":
                self._send_error(b.status, b.error_type, b.message)
                return
            if b.kind == "hang":
                if lb._closing.wait(b.seconds):
                    return
                b = lb.default
            if op == "converse":
                self._send_converse(b)
            else:
                self._send_stream(b)
        except (BrokenPipeError, ConnectionResetError):
            self._client_gone()

    def _send_error(self, status: int, error_type: str, message: str) -> None:
        payload = json.dumps({"message": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-ErrorType", error_type)
        self.send_header("x-amzn-RequestId", "loopback")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _send_converse(self, b: Behaviour) -> None:
        payload = json.dumps(
            {
                "output": {"message": {"role": "assistant", "content": [{"text": b.text}]}},
                "stopReason": b.stop_reason,
                "usage": {"inputTokens": b.input_tokens, "outputTokens": b.output_tokens,
                          "totalTokens": b.input_tokens + b.output_tokens},
                "metrics": {"latencyMs": 12},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-RequestId", "loopback")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _send_stream(self, b: Behaviour) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("x-amzn-RequestId", "loopback")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._chunk(encode_event("messageStart", {"role": "assistant"}))
        deltas = b.deltas if b.deltas is not None else _split(b.text)
        for i, d in enumerate(deltas):
            if b.kind == "stall" and i == b.stall_after:
                if self.loopback._closing.wait(b.seconds):
                    return
            self._chunk(encode_event("contentBlockDelta", {"delta": {"text": d}, "contentBlockIndex": 0}))
        self._chunk(encode_event("contentBlockStop", {"contentBlockIndex": 0}))
        self._chunk(encode_event("messageStop", {"stopReason": b.stop_reason}))
        self._chunk(
            encode_event(
                "metadata",
                {"usage": {"inputTokens": b.input_tokens, "outputTokens": b.output_tokens,
                           "totalTokens": b.input_tokens + b.output_tokens},
                 "metrics": {"latencyMs": 12}},
            )
        )
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
