"""The model contract: what every served model is called and what goes in and comes out of it.

A leaf module (standard library only) imported by both sides: ``model_repository/spec.py`` renders the
Triton configs from it, and the service (``server/backends``, ``server/llm/local.py``,
``server/hallucination/scorer.py``) builds its requests and checks its replies against it. Neither side
restates a model name, a tensor name, a dtype or a size: a change here changes both, and
``tests/unit/test_model_contract.py`` / ``tests/e2e/test_model_contract_served.py`` prove the built
repository and a running Triton serve exactly this.

Dtypes are Triton's names without the ``TYPE_`` prefix (``STRING`` in a config is ``BYTES`` on the wire).
Dims exclude the batch dimension for batched models (``max_batch_size > 0``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: The fixed intent taxonomy. Order is the classifier's output order; never reorder.
INTENT_LABELS: tuple[str, ...] = (
    "product_question",
    "recommendation",
    "order_status",
    "return_refund",
    "policy_faq",
    "price_deal",
    "chitchat",
    "escalation",
)
#: A label's index in :data:`INTENT_LABELS` (the classifier's output column, the training target).
LABEL_TO_ID: dict[str, int] = {label: i for i, label in enumerate(INTENT_LABELS)}
#: Width of the query embedding (all-MiniLM-L6-v2's hidden size) and of the adapted embedding.
EMBED_DIM = 384
#: Triton's model version every call asks for unless settings say otherwise (the repository's ``1/``).
DEFAULT_MODEL_VERSION = "1"
#: The classifier's floors (docs/lifecycle.md, "The gate"): test-split accuracy, the weakest class's F1, single-request p99 (ms). One
#: definition for every judge of a classifier: the model gate (model_repository/lifecycle/gate.py), the golden-set
#: gate's model check (model_repository/lifecycle/gate.py) and model selection (benchmarks/model_selection).
CLASSIFIER_FLOORS: dict[str, float] = {"accuracy": 0.90, "min_class_f1": 0.85, "p99_ms": 50.0}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # STRING, FP32, INT32, INT64 (Triton's TYPE_* without the prefix)
    dims: tuple[int, ...]
    optional: bool = False

    @property
    def wire_dtype(self) -> str:
        """The datatype string of the KServe v2 protocol (what tritonclient's InferInput takes)."""
        return "BYTES" if self.dtype == "STRING" else self.dtype


@dataclass(frozen=True)
class ModelContract:
    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int  # 0: no batch dimension (the decoupled LLM)
    decoupled: bool = False

    def input(self, name: str) -> TensorSpec:
        return next(t for t in self.inputs if t.name == name)

    def output(self, name: str) -> TensorSpec:
        return next(t for t in self.outputs if t.name == name)


def _text(name: str) -> TensorSpec:
    return TensorSpec(name, "STRING", (1,))


# Tensors shared by several models.
TEXT = _text("TEXT")
PROBS = TensorSpec("PROBS", "FP32", (len(INTENT_LABELS),))
EMBEDDING = TensorSpec("EMBEDDING", "FP32", (EMBED_DIM,))
ADAPTED = TensorSpec("ADAPTED", "FP32", (EMBED_DIM,))
SCORE = TensorSpec("SCORE", "FP32", (1,))

# The models the service calls (Triton ensembles, one python model, one ONNX model).
INTENT_CLASSIFIER = ModelContract("intent_classifier", (TEXT,), (PROBS,), max_batch_size=64)
#: The classifier's versioned parts (model lifecycle): new versions are version directories of the ONNX model
#: behind the ensemble, and a call at an explicit version goes tokenizer -> ONNX model itself (an ensemble's
#: steps name fixed versions). model_repository/lifecycle lays them out; server/rollout picks the version.
VERSIONED_CLASSIFIER = "intent_classifier_onnx"
CLASSIFIER_TOKENIZER = "intent_tokenizer"
QUERY_EMBEDDER = ModelContract("query_embedder", (TEXT,), (EMBEDDING,), max_batch_size=64)
EMBEDDING_ADAPTER = ModelContract("embedding_adapter", (EMBEDDING,), (ADAPTED,), max_batch_size=256)
RERANKER = ModelContract("reranker", (_text("QUERY"), _text("PASSAGE")), (SCORE,), max_batch_size=64)
HALLUCINATION_SCORER = ModelContract(
    "hallucination_scorer", (_text("SOURCE"), _text("CLAIM")), (SCORE,), max_batch_size=64
)
LLM_SMALL = ModelContract(
    "llm_small",
    (
        _text("PROMPT"),
        TensorSpec("MAX_TOKENS", "INT32", (1,)),
        TensorSpec("TEMPERATURE", "FP32", (1,), optional=True),
        TensorSpec("SEED", "INT64", (1,), optional=True),
    ),
    (_text("TEXT_DELTA"), TensorSpec("USAGE", "INT32", (2,)), _text("FINISH_REASON")),
    max_batch_size=0,
    decoupled=True,
)

#: Every model the service calls, by name.
SERVICE_MODELS: dict[str, ModelContract] = {
    m.name: m for m in (INTENT_CLASSIFIER, QUERY_EMBEDDER, EMBEDDING_ADAPTER, RERANKER, HALLUCINATION_SCORER, LLM_SMALL)
}
#: The models on the request path (readiness follows these; the LLM and the scorer have fallbacks).
REQUEST_PATH_MODELS: tuple[str, ...] = (INTENT_CLASSIFIER.name, QUERY_EMBEDDER.name, EMBEDDING_ADAPTER.name, RERANKER.name)
