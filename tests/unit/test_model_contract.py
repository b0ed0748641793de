"""The model contract (contracts/models.py) is the one statement of what the service calls: the
rendered configs (both flavours), the built repository and the service's settings agree with it, and the
service restates no embedding width or tensor name of its own."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from contracts import models as contract
from model_repository import spec
from model_repository.build import DEFAULT_BUILD_DIR
from server.intents import INTENT_LABELS
from server.settings import Settings
from tests.support.requirements import require

pytestmark = pytest.mark.L0

ROOT = Path(__file__).resolve().parents[2]
BUILT = Path(os.environ.get("MANGAASSIST_BUILD_DIR", DEFAULT_BUILD_DIR)) / "triton" / "cpu"


def _declared(cfg: mc.ModelConfig) -> tuple:
    def io(tensors) -> list[tuple]:
        return [(t.name, mc.DataType.Name(t.data_type).removeprefix("TYPE_"), tuple(t.dims), getattr(t, "optional", False)) for t in tensors]

    return io(cfg.input), io(cfg.output), cfg.max_batch_size, cfg.model_transaction_policy.decoupled


def _contracted(m: contract.ModelContract) -> tuple:
    def io(tensors) -> list[tuple]:
        return [(t.name, t.dtype, t.dims, t.optional) for t in tensors]

    return io(m.inputs), io(m.outputs), m.max_batch_size, m.decoupled


@pytest.mark.parametrize("flavour", spec.FLAVOURS)
def test_rendered_configs_serve_the_contract(flavour):
    configs = spec.render(flavour)
    for model in contract.SERVICE_MODELS.values():
        assert _declared(configs[model.name]) == _contracted(model), model.name


def test_built_repository_serves_the_contract():
    require("build", (BUILT / contract.INTENT_CLASSIFIER.name / "config.pbtxt").is_file(), f"no built repository at {BUILT}")
    for model in contract.SERVICE_MODELS.values():
        cfg = spec.parse_pbtxt((BUILT / model.name / "config.pbtxt").read_text())
        assert _declared(cfg) == _contracted(model), model.name
        assert (BUILT / model.name / contract.DEFAULT_MODEL_VERSION).is_dir(), model.name
    labels = (BUILT / "intent_classifier_onnx" / "labels.txt").read_text().split()
    assert tuple(labels) == INTENT_LABELS == contract.INTENT_LABELS


def test_service_settings_name_the_contract_models():
    s = Settings()
    assert (s.triton.classifier_model, s.triton.embedder_model, s.triton.adapter_model, s.triton.reranker_model) == \
        contract.REQUEST_PATH_MODELS
    assert s.llm.local_model == contract.LLM_SMALL.name
    assert s.triton.model_version == contract.DEFAULT_MODEL_VERSION


def _constants(path: Path) -> list[tuple[int, object]]:
    """(line, value) of every constant in ``path`` except docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return [(n.lineno, n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant) and id(n) not in docstrings]


def test_server_code_restates_no_tensor_name_or_embedding_width():
    names = {t.name for m in contract.SERVICE_MODELS.values() for t in (*m.inputs, *m.outputs)}
    found = []
    for path in sorted((ROOT / "server").rglob("*.py")):
        for line, value in _constants(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if isinstance(value, str) and value in names:
                found.append((where, value))
            # settings.py's 384 is a token budget (routing.max_tokens), not a width
            if value == contract.EMBED_DIM and type(value) is int and path.name != "settings.py":
                found.append((where, value))
    assert not found, f"take these from contracts/models.py: {found}"
