"""Triton python model (decoupled): stream text generation from SmolLM2 with ONNX Runtime + a KV cache.

Inputs (max_batch_size 0, one prompt per request):
    PROMPT       TYPE_STRING [1]  JSON ``{"messages": [{"role", "content"}, ...]}`` rendered here with the
                                  model's ChatML template (plain text is taken as one user message)
    MAX_TOKENS   TYPE_INT32  [1]  new tokens to generate (clamped to the ``max_new_tokens`` parameter)
    TEMPERATURE  TYPE_FP32   [1]  optional; 0 = greedy, else temperature + top-p 0.9 sampling
    SEED         TYPE_INT64  [1]  optional; sampling seed (default: CRC32 of the prompt, so a request is
                                  reproducible)
Outputs, on *every* streamed response (the transaction policy is decoupled):
    TEXT_DELTA     TYPE_STRING [1]  new text since the previous response (UTF-8 safe; may be empty)
    USAGE          TYPE_INT32  [2]  running (prompt tokens, generated tokens); the last response's is final
    FINISH_REASON  TYPE_STRING [1]  "" until the last response, then "stop" | "length" | "cancelled"
The last response carries TRITONSERVER_RESPONSE_COMPLETE_FINAL. A non-empty FINISH_REASON marks the end,
so clients need not enable Triton's empty final response. Errors (bad input, a prompt over
``max_input_tokens``) come back as one error response flagged final; the model keeps serving.

Generation: one prefill of the prompt, then one token per step with the optimum export's
``past_key_values.N.key/value`` inputs fed from the previous step's ``present.N.key/value`` outputs through
ORT IOBinding (no copy of the cache into numpy between steps). The KV of the last prompt is kept and reused
for the next prompt's longest common token prefix (the system prompt + few-shot block is identical for
every request, see server/llm/prompts.py), so only the request-specific tail is prefilled. Deltas are made
by decoding the whole generated sequence and emitting the new suffix, held back while it ends in an
incomplete UTF-8 sequence. ``request.is_cancelled()`` is checked every step: a client cancel stops it.

Config parameters: onnx_file, tokenizer_file, meta_file (names relative to the version directory),
intra_op_threads, allow_spinning (ORT worker spin-wait, default false), max_input_tokens, max_new_tokens,
stream_interval_tokens, prefix_cache_min_tokens, stop_at_answer_end ("true": stop once the answer format's
end line is written -- the tier drops whatever follows it), use_cuda ("auto" | "true" | "false"; CUDA EP when onnxruntime-gpu offers it and the instance is GPU).

The module imports without Triton (``pb_utils`` is then None) so the build and the tests reuse
:class:`OnnxGenerator` and :func:`render_chatml` in-process.
"""

import json
import os
import re
import time
import zlib

import numpy as np

try:  # pragma: no cover - only present inside the Triton python backend stub
    import triton_python_backend_utils as pb_utils
except ImportError:  # imported by the build / tests
    pb_utils = None

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
#: SmolLM2-Instruct's own default system turn (its chat template adds it when the first turn isn't system).
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
TOP_P = 0.9
#: The answer format's end event (server/llm/answer_format.py) as a whole line; straight or smart quotes, an
#: optional trailing comma -- the line shapes server/llm/answer_format.parse reads as ``{"type": "end"}``.
_END_LINE = re.compile(r'^\s*\{\s*["\'\u201c\u201d]type["\'\u201c\u201d]\s*:\s*["\'\u201c\u201d]end["\'\u201c\u201d]\s*\}\s*,?\s*$')


def answer_ended(text):
    """True when ``text``'s last non-blank line is the answer format's end event.

    Everything after that line is dropped by the tier's normaliser (server/llm/local.py), so generation can
    stop there: same answer, fewer tokens, finish reason "stop" instead of running on to MAX_TOKENS.
    """
    stripped = text.rstrip()
    return bool(stripped) and _END_LINE.match(stripped.rsplit("\n", 1)[-1]) is not None


def render_chatml(messages, add_generation_prompt=True, default_system=DEFAULT_SYSTEM):
    """SmolLM2's chat template (ChatML), byte-identical to its Jinja template in tokenizer_config.json."""
    parts = []
    if messages and messages[0].get("role") != "system" and default_system is not None:
        parts.append(f"{IM_START}system\n{default_system}{IM_END}\n")
    for m in messages:
        parts.append(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n")
    if add_generation_prompt:
        parts.append(f"{IM_START}assistant\n")
    return "".join(parts)


def prompt_to_text(prompt):
    """The PROMPT tensor value (JSON messages or plain text) -> the ChatML string to tokenize."""
    stripped = prompt.lstrip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(prompt)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "messages" in obj:
            messages = obj["messages"]
            if not isinstance(messages, list) or not messages:
                raise ValueError("PROMPT.messages must be a non-empty list")
            for m in messages:
                if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                    raise ValueError("every PROMPT message needs string 'role' and 'content'")
                if m["role"] not in ("system", "user", "assistant"):
                    raise ValueError(f"unknown message role {m['role']!r}")
            return render_chatml(messages)
    return render_chatml([{"role": "user", "content": prompt}])


class PromptTooLong(ValueError):
    pass


class OnnxGenerator:
    """Greedy / top-p generation over an optimum ``text-generation-with-past`` ONNX export."""

    def __init__(self, onnx_path, tokenizer_path, meta_path=None, *, threads=2, use_cuda=False,
                 prefix_cache_min_tokens=16, allow_spinning=False, device_id=0):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(tokenizer_path)
        meta = {}
        if meta_path and os.path.exists(meta_path):
            with open(meta_path, encoding="utf-8") as fh:
                meta = json.load(fh)
        stop = set(meta.get("stop_token_ids", []))
        for tok in (IM_END, "<|endoftext|>"):
            tid = self.tokenizer.token_to_id(tok)
            if tid is not None:
                stop.add(tid)
        self.stop_ids = stop
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spin-waiting worker threads starve everything else on a shared 2-core box (measured: 8 -> 13 tok/s
        # with it off while another process trained); turn on for a dedicated, uncontended CPU.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        providers = ["CPUExecutionProvider"]
        if use_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(device_id)}))
        self.session = ort.InferenceSession(onnx_path, opts, providers=providers)
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.device_id = int(device_id) if self.device == "cuda" else 0
        self._ort = ort
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.past_names = sorted((n for n in inputs if n.startswith("past_key_values.")), key=_layer_key)
        self.present_of = {p: p.replace("past_key_values.", "present.") for p in self.past_names}
        self.has_position_ids = "position_ids" in inputs
        self.output_names = [o.name for o in self.session.get_outputs()]
        if "logits" not in self.output_names or not self.past_names:
            raise RuntimeError(f"{onnx_path} is not a text-generation-with-past export -- this is a bug")
        first = inputs[self.past_names[0]]
        self.kv_heads, self.head_dim = int(first.shape[1]), int(first.shape[3])
        self.kv_dtype = np.float16 if first.type == "tensor(float16)" else np.float32
        self.prefix_cache_min_tokens = int(prefix_cache_min_tokens)
        self._cache_ids = []  # token ids whose KV is in _cache_kv
        self._cache_kv = None  # {past name: np.ndarray [1, heads, len, dim]}

    # ---------------------------------------------------------------- tokens
    def encode_prompt(self, prompt):
        return self.tokenizer.encode(prompt_to_text(prompt), add_special_tokens=False).ids

    def decode(self, ids):
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # ---------------------------------------------------------------- one forward pass
    def _forward(self, ids, start, past):
        """Run ``ids`` at positions start.. with ``past`` ({name: OrtValue | ndarray}); (last logits, presents)."""
        n = len(ids)
        io = self.session.io_binding()
        io.bind_cpu_input("input_ids", np.asarray([ids], dtype=np.int64))
        io.bind_cpu_input("attention_mask", np.ones((1, start + n), dtype=np.int64))
        if self.has_position_ids:
            io.bind_cpu_input("position_ids", np.arange(start, start + n, dtype=np.int64)[None, :])
        for name in self.past_names:
            value = past[name]
            if isinstance(value, np.ndarray):
                io.bind_cpu_input(name, value)
            else:
                io.bind_ortvalue_input(name, value)
        for name in self.output_names:
            io.bind_output(name, self.device, self.device_id)
        self.session.run_with_iobinding(io)
        outs = dict(zip(self.output_names, io.get_outputs()))
        logits = outs["logits"].numpy()[0, -1].astype(np.float32)
        presents = {p: outs[self.present_of[p]] for p in self.past_names}
        return logits, presents

    def _empty_past(self):
        shape = (1, self.kv_heads, 0, self.head_dim)
        return {name: np.zeros(shape, dtype=self.kv_dtype) for name in self.past_names}

    def _prefill(self, ids):
        """Logits after the prompt, reusing the cached KV of the longest shared token prefix."""
        reuse = 0
        if self._cache_kv is not None:
            limit = min(len(self._cache_ids), len(ids) - 1)  # always run >= 1 token to get logits
            while reuse < limit and self._cache_ids[reuse] == ids[reuse]:
                reuse += 1
            if reuse < self.prefix_cache_min_tokens:
                reuse = 0
        if reuse:
            past = {n: np.ascontiguousarray(v[:, :, :reuse, :]) for n, v in self._cache_kv.items()}
        else:
            past = self._empty_past()
        logits, presents = self._forward(ids[reuse:], reuse, past)
        # Keep this prompt's KV for the next request's shared prefix (one entry; prompts share the prefix).
        self._cache_kv = {n: v.numpy() for n, v in presents.items()}
        self._cache_ids = list(ids)
        return logits, presents, reuse

    # ---------------------------------------------------------------- the loop
    def generate(self, ids, max_new_tokens, temperature=0.0, seed=0, should_stop=None, stop_when=None):
        """Yield (token id | None, finish reason | None); the last item has a reason, token None.

        ``should_stop()`` is polled before every step (cancellation); it ends with reason "cancelled".
        ``stop_when(generated ids)`` is polled after every token; True ends with reason "stop" (a stop
        sequence, e.g. :func:`answer_ended`).
        """
        rng = np.random.default_rng(seed)
        if max_new_tokens <= 0:
            yield None, "length"
            return
        if should_stop is not None and should_stop():
            yield None, "cancelled"
            return
        logits, past, _ = self._prefill(ids)
        pos = len(ids)
        produced = []
        while True:
            token = self._pick(logits, temperature, rng)
            if token in self.stop_ids:
                yield None, "stop"
                return
            produced.append(token)
            yield token, None
            if stop_when is not None and stop_when(produced):
                yield None, "stop"
                return
            if len(produced) >= max_new_tokens:
                yield None, "length"
                return
            if should_stop is not None and should_stop():
                yield None, "cancelled"
                return
            logits, past = self._forward([token], pos, past)
            pos += 1

    @staticmethod
    def _pick(logits, temperature, rng):
        if temperature <= 0:
            return int(np.argmax(logits))
        z = logits / float(temperature)
        z = z - z.max()
        probs = np.exp(z)
        probs /= probs.sum()
        order = np.argsort(-probs)
        cum = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cum, TOP_P)) + 1]
        p = probs[keep] / probs[keep].sum()
        return int(rng.choice(keep, p=p))


def _layer_key(name):
    # past_key_values.<layer>.<key|value>
    _, layer, kind = name.split(".")
    return int(layer), kind


class DeltaDecoder:
    """Turns a growing token sequence into text deltas that never split a UTF-8 character."""

    def __init__(self, decode):
        self._decode = decode
        self.ids = []
        self.emitted = ""

    def add(self, token):
        self.ids.append(token)

    def delta(self, final=False):
        text = self._decode(self.ids)
        if not final and text.endswith("\ufffd"):
            return ""  # an incomplete multi-byte character: wait for its remaining bytes
        if not text.startswith(self.emitted):  # a tokenizer merge changed earlier text: emit nothing lost
            common = os.path.commonprefix([text, self.emitted])
            self.emitted = common
        out = text[len(self.emitted):]
        self.emitted = text
        return out


class TritonPythonModel:  # pragma: no cover - exercised by tests/e2e/test_local_llm.py in tritonserver
    def initialize(self, args):
        config = json.loads(args["model_config"])
        if not pb_utils.using_decoupled_model_transaction_policy(config):
            raise pb_utils.TritonModelException("llm model needs model_transaction_policy { decoupled: true }")
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        base = os.path.join(args["model_repository"], args["model_version"])
        use_cuda = params.get("use_cuda", "auto")
        if use_cuda == "auto":
            use_cuda = args.get("model_instance_kind") == "GPU"
        else:
            use_cuda = use_cuda == "true"
        self.generator = OnnxGenerator(
            os.path.join(base, params.get("onnx_file", "model.onnx")),
            os.path.join(base, params.get("tokenizer_file", "tokenizer.json")),
            os.path.join(base, params.get("meta_file", "llm_meta.json")),
            threads=int(params.get("intra_op_threads", "2")),
            use_cuda=use_cuda,
            prefix_cache_min_tokens=int(params.get("prefix_cache_min_tokens", "16")),
            allow_spinning=params.get("allow_spinning", "false") == "true",
            device_id=int(args.get("model_instance_device_id", "0") or 0),
        )
        if use_cuda and self.generator.device != "cuda":
            pb_utils.Logger.log_warn("llm_small: GPU instance but onnxruntime has no CUDA provider; running on CPU")
        self.max_input_tokens = int(params.get("max_input_tokens", "1024"))
        self.max_new_tokens = int(params.get("max_new_tokens", "512"))
        self.interval = max(1, int(params.get("stream_interval_tokens", "4")))
        self.stop_at_answer_end = params.get("stop_at_answer_end", "true") == "true"
        self.logger = pb_utils.Logger

    def execute(self, requests):
        for request in requests:
            sender = request.get_response_sender()
            try:
                self._generate(request, sender)
            except (ValueError, PromptTooLong) as err:
                self._error(sender, str(err))
            except Exception as err:  # noqa: BLE001 - ORT raises its own types; never leave a stream open
                self.logger.log_error(f"llm generation failed: {err!r}")
                self._error(sender, "generation failed inside the llm model")
        return None

    @staticmethod
    def _error(sender, message):
        sender.send(
            pb_utils.InferenceResponse(error=pb_utils.TritonError(message)),
            flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL,
        )

    @staticmethod
    def _optional(request, name, default):
        tensor = pb_utils.get_input_tensor_by_name(request, name)
        if tensor is None:
            return default
        arr = tensor.as_numpy().reshape(-1)
        return arr[0] if arr.size else default

    def _generate(self, request, sender):
        raw = pb_utils.get_input_tensor_by_name(request, "PROMPT").as_numpy().reshape(-1)[0]
        prompt = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        max_tokens = int(self._optional(request, "MAX_TOKENS", self.max_new_tokens))
        if max_tokens <= 0:
            raise ValueError(f"MAX_TOKENS must be positive, got {max_tokens}")
        max_tokens = min(max_tokens, self.max_new_tokens)
        temperature = float(self._optional(request, "TEMPERATURE", 0.0))
        if not np.isfinite(temperature) or temperature < 0:
            raise ValueError(f"TEMPERATURE must be >= 0, got {temperature}")
        seed = int(self._optional(request, "SEED", zlib.crc32(prompt.encode("utf-8"))))
        ids = self.generator.encode_prompt(prompt)
        if len(ids) > self.max_input_tokens:
            raise PromptTooLong(
                f"prompt has {len(ids)} tokens; the limit is max_input_tokens={self.max_input_tokens}"
            )

        def cancelled():
            return request.is_cancelled()

        decode = self.generator.decode
        stop_when = (lambda generated: answer_ended(decode(generated))) if self.stop_at_answer_end else None
        decoder = DeltaDecoder(decode)
        pending = 0
        started = time.perf_counter()
        for token, reason in self.generator.generate(ids, max_tokens, temperature, seed, cancelled, stop_when):
            if reason is not None:
                if reason == "cancelled":
                    self.logger.log_info(f"llm request cancelled after {len(decoder.ids)} tokens")
                self._send(sender, decoder.delta(final=True), len(ids), len(decoder.ids), reason)
                return
            decoder.add(token)
            pending += 1
            # First token at once (time to first token), then every `interval` tokens.
            if len(decoder.ids) == 1 or pending >= self.interval:
                text = decoder.delta()
                if text:
                    self._send(sender, text, len(ids), len(decoder.ids), "")
                    pending = 0
        raise RuntimeError(f"generator ended without a finish reason after {time.perf_counter() - started:.1f}s")

    @staticmethod
    def _send(sender, text, prompt_tokens, generated, reason):
        tensors = [
            pb_utils.Tensor("TEXT_DELTA", np.array([text.encode("utf-8")], dtype=np.object_)),
            pb_utils.Tensor("USAGE", np.array([prompt_tokens, generated], dtype=np.int32)),
            pb_utils.Tensor("FINISH_REASON", np.array([reason.encode("utf-8")], dtype=np.object_)),
        ]
        flags = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL if reason else 0
        sender.send(pb_utils.InferenceResponse(output_tensors=tensors), flags=flags)

    def finalize(self):
        self.generator = None
