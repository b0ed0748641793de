"""The single source of truth for the Triton model repository.

Every served model is declared once here; :func:`render` turns the declarations into Triton
``ModelConfig`` protobufs (Triton's own schema, from tritonclient) for two flavours:

* ``cpu`` — the embedded default: ONNX models run by ONNX Runtime inside the python backend (the only
  backend in the nvidia-pytriton wheel), tokenisers as python models, composed by Triton ensembles.
* ``gpu`` — the cluster flavour for the NGC image: the same models with the native ``onnxruntime``
  backend and the TensorRT execution accelerator in FP16; tokenisers stay python models on CPU.

The local LLM ``llm_small`` (SmolLM2, decoupled/streaming) is a python-backend model in *both* flavours:
its token loop with a KV cache is not something the onnxruntime backend can drive. Its ModelConfig is
built by ``model_repository/training/smollm.py:llm_model_config`` and declared here like the others.

Names, inputs and outputs are identical in both flavours (a test proves it); only the execution
details differ. The committed ``model_repository/{cpu,gpu}/*/config.pbtxt`` files are the rendered
output of this module (``python -m model_repository configs`` rewrites them; a test checks they match).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from contracts import models as contract
from contracts.models import EMBED_DIM, INTENT_LABELS, ModelContract, TensorSpec  # noqa: F401 (re-exported)

Flavour = Literal["cpu", "gpu"]
FLAVOURS: tuple[Flavour, ...] = ("cpu", "gpu")
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str  # Triton data type without the TYPE_ prefix: STRING, FP32, INT64
    dims: tuple[int, ...]
    label_filename: str = ""


@dataclass(frozen=True)
class Batching:
    """Mirrors Triton's ``dynamic_batching`` + ``default_queue_policy`` field names."""

    preferred_batch_size: tuple[int, ...] = (8, 16, 32)
    max_queue_delay_microseconds: int = 2000
    max_queue_size: int = 128
    default_timeout_microseconds: int = 2_000_000
    allow_timeout_override: bool = True


@dataclass(frozen=True)
class Tokenizer:
    """A python-backend tokeniser emitting bucket-padded token tensors (same bucket => batchable)."""

    name: str
    mode: Literal["single", "pair"]
    max_length: int
    buckets: tuple[int, ...]
    text_inputs: tuple[str, ...]
    max_input_bytes: int = 16384
    max_batch_size: int = 64
    batching: Batching = field(default_factory=lambda: Batching(preferred_batch_size=(8, 16), max_queue_delay_microseconds=500))


@dataclass(frozen=True)
class OnnxModel:
    """An ONNX graph: python backend + ONNX Runtime on cpu, native onnxruntime (+TensorRT) on gpu."""

    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    max_batch_size: int = 64
    batching: Batching = field(default_factory=Batching)
    #: cpu: instances x ORT threads each. Two instances of two threads: a lone request still gets both cores,
    #: and while one instance runs, the other is waiting for work, which is what wakes Triton 2.51's dynamic
    #: batcher on enqueue when a queue policy is set (with one busy instance a request could wait for the
    #: batcher's 500 ms poll: benchmarks/results/queue_stall.md). The threads never spin-wait
    #: (allow_spinning=0), so the idle instance costs memory, not CPU (benchmarks/results/ort_spinning.md).
    cpu_instances: int = 2
    cpu_threads: int = 2
    gpu_instances: int = 2
    tensorrt: bool = True
    warmup_seq: int = 16


@dataclass(frozen=True)
class Ensemble:
    """Text in, model output out: tokenizer -> onnx model, scheduled by Triton."""

    name: str
    tokenizer: str
    model: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    max_batch_size: int = 64


@dataclass(frozen=True)
class LLMModel:
    """A decoupled (streaming) python-backend LLM, one prompt per request (``max_batch_size`` 0, no
    batcher). The ModelConfig comes from :func:`model_repository.training.smollm.llm_model_config`."""

    name: str
    max_input_tokens: int = 1024
    max_new_tokens: int = 512


def _token_tensors() -> tuple[Tensor, ...]:
    return tuple(Tensor(n, "INT64", (-1,)) for n in TOKEN_INPUTS)


def _tensor(t: TensorSpec, label_filename: str = "") -> Tensor:
    """A tensor of the model contract (contracts/models.py), as a config declares it."""
    return Tensor(t.name, t.dtype, t.dims, label_filename)


def _io_of(m: ModelContract) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    return tuple(_tensor(t) for t in m.inputs), tuple(_tensor(t) for t in m.outputs)


TEXT = _tensor(contract.TEXT)
PROBS = _tensor(contract.PROBS, label_filename="labels.txt")
EMBEDDING = _tensor(contract.EMBEDDING)
SCORE = _tensor(contract.SCORE)

TOKENIZERS: tuple[Tokenizer, ...] = (
    Tokenizer("intent_tokenizer", "single", max_length=64, buckets=(16, 32, 64), text_inputs=(TEXT.name,)),
    Tokenizer("embed_tokenizer", "single", max_length=256, buckets=(16, 32, 64, 128, 256), text_inputs=(TEXT.name,)),
    # 64 tokens: a chunk's title line (series, volume, edition) is what separates candidates, and it halves
    # the per-pair cost on CPU compared with 128 (the reranker is trained at this length too)
    Tokenizer("rerank_tokenizer", "pair", max_length=64, buckets=(32, 64), text_inputs=tuple(t.name for t in contract.RERANKER.inputs)),
    Tokenizer("hallucination_tokenizer", "pair", max_length=128, buckets=(32, 64, 128), text_inputs=tuple(t.name for t in contract.HALLUCINATION_SCORER.inputs)),
)

ONNX_MODELS: tuple[OnnxModel, ...] = (
    OnnxModel("intent_classifier_onnx", _token_tensors(), (PROBS,)),
    OnnxModel("query_embedder_onnx", _token_tensors(), (EMBEDDING,)),
    # One instance: compute-bound at 64-token pairs, it gains more from one bigger batch (avg 4.4 vs 3.0 at c=8)
    # than from a second two-threaded instance competing for the same two cores (perf_summary.md, 20:40 run).
    OnnxModel("reranker_onnx", _token_tensors(), (SCORE,), warmup_seq=64, cpu_instances=1),
    # Scored off the request path (server/hallucination): throughput over latency, so a longer batching window.
    OnnxModel(
        "hallucination_scorer_onnx",
        _token_tensors(),
        (SCORE,),
        batching=Batching(preferred_batch_size=(16, 32, 64), max_queue_delay_microseconds=5000),
        cpu_instances=1,
        cpu_threads=1,
        gpu_instances=1,
        warmup_seq=64,
    ),
    OnnxModel(
        contract.EMBEDDING_ADAPTER.name,
        *_io_of(contract.EMBEDDING_ADAPTER),
        max_batch_size=contract.EMBEDDING_ADAPTER.max_batch_size,
        batching=Batching(preferred_batch_size=(16, 64), max_queue_delay_microseconds=500, max_queue_size=512),
        cpu_threads=1,
        gpu_instances=1,
        tensorrt=False,
    ),
)

ENSEMBLES: tuple[Ensemble, ...] = (
    Ensemble(contract.INTENT_CLASSIFIER.name, "intent_tokenizer", "intent_classifier_onnx", (TEXT,), (PROBS,)),
    Ensemble(contract.QUERY_EMBEDDER.name, "embed_tokenizer", "query_embedder_onnx", *_io_of(contract.QUERY_EMBEDDER)),
    Ensemble(contract.RERANKER.name, "rerank_tokenizer", "reranker_onnx", *_io_of(contract.RERANKER)),
    Ensemble(
        contract.HALLUCINATION_SCORER.name,
        "hallucination_tokenizer",
        "hallucination_scorer_onnx",
        *_io_of(contract.HALLUCINATION_SCORER),
    ),
)

LLM_MODELS: tuple[LLMModel, ...] = (LLMModel(contract.LLM_SMALL.name),)

#: Which trained artefact each ONNX model serves (build output directory under .build/models/).
ARTEFACT_OF: dict[str, str] = {
    "intent_classifier_onnx": "intent_classifier",
    "query_embedder_onnx": "query_embedder",
    "reranker_onnx": "reranker",
    "hallucination_scorer_onnx": "hallucination_scorer",
    "embedding_adapter": "embedding_adapter",
}

#: Which build output each LLM serves (the SmolLM2 export directory under .build/models/).
LLM_EXPORT_OF: dict[str, str] = {"llm_small": "smollm2"}

#: Comment lines written above a model's rendered config (what the config alone does not say).
NOTES: dict[str, tuple[str, ...]] = {
    "llm_small": (
        "SmolLM2-135M-Instruct, decoupled (streaming), one prompt per request: max_batch_size 0, no batcher, so",
        "no queue policy; the service bounds each call by its deadline and cancels the stream on expiry.",
        "Python backend in both flavours (a KV-cache token loop; Triton's onnxruntime backend cannot drive it).",
        "gpu flavour: a KIND_GPU instance, but the model uses ONNX Runtime's CUDA provider only when the image's",
        "onnxruntime has it (onnxruntime-gpu); otherwise it runs on the CPU (model_repository/backends/llm_model.py).",
    ),
}


def served_model_names() -> tuple[str, ...]:
    return tuple(m.name for m in (*TOKENIZERS, *ONNX_MODELS, *ENSEMBLES, *LLM_MODELS))


# ----------------------------------------------------------------------------- rendering
def _io(cls: type, t: Tensor) -> object:
    msg = cls(name=t.name, data_type=mc.DataType.Value(f"TYPE_{t.dtype}"), dims=list(t.dims))
    if t.label_filename and cls is mc.ModelOutput:
        msg.label_filename = t.label_filename
    return msg


def _dynamic_batching(b: Batching, max_queue_size: int | None) -> mc.ModelDynamicBatching:
    return mc.ModelDynamicBatching(
        preferred_batch_size=list(b.preferred_batch_size),
        max_queue_delay_microseconds=b.max_queue_delay_microseconds,
        default_queue_policy=mc.ModelQueuePolicy(
            timeout_action=mc.ModelQueuePolicy.REJECT,
            default_timeout_microseconds=b.default_timeout_microseconds,
            allow_timeout_override=b.allow_timeout_override,
            max_queue_size=b.max_queue_size if max_queue_size is None else max_queue_size,
        ),
    )


def _params(**kv: object) -> dict[str, mc.ModelParameter]:
    return {k: mc.ModelParameter(string_value=str(v)) for k, v in kv.items()}


def _tokenizer_config(t: Tokenizer, flavour: Flavour, max_queue_size: int | None) -> mc.ModelConfig:
    cfg = mc.ModelConfig(
        name=t.name,
        backend="python",
        max_batch_size=t.max_batch_size,
        input=[_io(mc.ModelInput, Tensor(n, "STRING", (1,))) for n in t.text_inputs],
        output=[_io(mc.ModelOutput, x) for x in _token_tensors()],
        dynamic_batching=_dynamic_batching(t.batching, max_queue_size),
        instance_group=[mc.ModelInstanceGroup(kind=mc.ModelInstanceGroup.KIND_CPU, count=1 if flavour == "cpu" else 4)],
    )
    for k, v in _params(
        mode=t.mode,
        max_length=t.max_length,
        buckets=",".join(map(str, t.buckets)),
        max_input_bytes=t.max_input_bytes,
        tokenizer_file="tokenizer.json",
    ).items():
        cfg.parameters[k].CopyFrom(v)
    return cfg


def _warmup(m: OnnxModel) -> list[mc.ModelWarmup]:
    out = []
    for batch in (1, 8):
        inputs = {}
        for t in m.inputs:
            dims = [m.warmup_seq] if t.dims == (-1,) else list(t.dims)
            dtype = mc.DataType.Value(f"TYPE_{t.dtype}")
            if t.dtype == "FP32":  # token ids stay zero ([PAD]): random ids could leave the vocabulary
                inputs[t.name] = mc.ModelWarmup.Input(data_type=dtype, dims=dims, random_data=True)
            else:
                inputs[t.name] = mc.ModelWarmup.Input(data_type=dtype, dims=dims, zero_data=True)
        out.append(mc.ModelWarmup(name=f"warmup_b{batch}", batch_size=batch, inputs=inputs))
    return out


def _onnx_config(m: OnnxModel, flavour: Flavour, max_queue_size: int | None) -> mc.ModelConfig:
    cfg = mc.ModelConfig(
        name=m.name,
        max_batch_size=m.max_batch_size,
        input=[_io(mc.ModelInput, t) for t in m.inputs],
        output=[_io(mc.ModelOutput, t) for t in m.outputs],
        dynamic_batching=_dynamic_batching(m.batching, max_queue_size),
        model_warmup=_warmup(m),
    )
    if flavour == "cpu":
        cfg.backend = "python"
        cfg.instance_group.append(mc.ModelInstanceGroup(kind=mc.ModelInstanceGroup.KIND_CPU, count=m.cpu_instances))
        for k, v in _params(onnx_file="model.onnx", intra_op_threads=m.cpu_threads, allow_spinning=0).items():
            cfg.parameters[k].CopyFrom(v)
    else:
        cfg.backend = "onnxruntime"
        cfg.default_model_filename = "model.onnx"
        cfg.instance_group.append(
            mc.ModelInstanceGroup(kind=mc.ModelInstanceGroup.KIND_GPU, count=m.gpu_instances, gpus=[0])
        )
        if m.tensorrt:
            trt = mc.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator(
                name="tensorrt",
                parameters={
                    "precision_mode": "FP16",
                    "max_workspace_size_bytes": str(2 << 30),
                    "trt_engine_cache_enable": "true",
                    "trt_engine_cache_path": "/tmp/trt_engine_cache",
                },
            )
            cfg.optimization.execution_accelerators.gpu_execution_accelerator.append(trt)
    return cfg


def _ensemble_config(e: Ensemble) -> mc.ModelConfig:
    tok = next(t for t in TOKENIZERS if t.name == e.tokenizer)
    model = next(m for m in ONNX_MODELS if m.name == e.model)
    steps = [
        mc.ModelEnsembling.Step(
            model_name=tok.name,
            model_version=-1,
            input_map={n: n for n in tok.text_inputs},
            output_map={n: f"_{n}" for n in TOKEN_INPUTS},
        ),
        mc.ModelEnsembling.Step(
            model_name=model.name,
            model_version=-1,
            input_map={n: f"_{n}" for n in TOKEN_INPUTS},
            output_map={o.name: o.name for o in model.outputs},
        ),
    ]
    return mc.ModelConfig(
        name=e.name,
        platform="ensemble",
        max_batch_size=e.max_batch_size,
        input=[_io(mc.ModelInput, t) for t in e.inputs],
        output=[_io(mc.ModelOutput, t) for t in e.outputs],
        ensemble_scheduling=mc.ModelEnsembling(step=steps),
    )


def _llm_config(m: LLMModel, flavour: Flavour) -> mc.ModelConfig:
    from model_repository.training.smollm import llm_model_config

    cfg = llm_model_config(flavour, max_input_tokens=m.max_input_tokens, max_new_tokens=m.max_new_tokens)
    if cfg.name != m.name:
        raise ValueError(f"llm_model_config names its model {cfg.name!r}, spec declares {m.name!r}; this is a bug")
    return cfg


def render(
    flavour: Flavour, *, max_queue_size: int | None = None, dynamic_batching: bool = True
) -> dict[str, mc.ModelConfig]:
    """All model configs for ``flavour``.

    ``max_queue_size`` overrides every queue bound (tests); ``dynamic_batching=False`` drops the
    batcher from every model (the benchmarks' batching-off baseline).
    """
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}; expected one of {FLAVOURS}")
    configs: dict[str, mc.ModelConfig] = {}
    for t in TOKENIZERS:
        configs[t.name] = _tokenizer_config(t, flavour, max_queue_size)
    for m in ONNX_MODELS:
        configs[m.name] = _onnx_config(m, flavour, max_queue_size)
    for e in ENSEMBLES:
        configs[e.name] = _ensemble_config(e)
    for llm in LLM_MODELS:
        configs[llm.name] = _llm_config(llm, flavour)
    if not dynamic_batching:
        for cfg in configs.values():
            cfg.ClearField("dynamic_batching")
    return configs


def to_pbtxt(cfg: mc.ModelConfig) -> str:
    header = "# Generated by `python -m model_repository configs` from model_repository/spec.py. Do not edit.\n"
    notes = "".join(f"# {line}\n" for line in NOTES.get(cfg.name, ()))
    return header + notes + text_format.MessageToString(cfg)


def parse_pbtxt(text: str) -> mc.ModelConfig:
    return text_format.Parse(text, mc.ModelConfig())


