"""The build code accepts any HF encoder: a small randomly initialised DistilBERT trains, exports and serves."""

import numpy as np
import pytest

pytestmark = pytest.mark.L0


def test_distilbert_checkpoint_trains_exports_and_runs_in_onnxruntime(tmp_path):
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    from model_repository import export
    from model_repository.datagen import generate_all
    from model_repository.training.common import base_checkpoint
    from model_repository.training.intent import train_intent_classifier

    ckpt = tmp_path / "distilbert"
    DistilBertModel(DistilBertConfig(dim=32, hidden_dim=64, n_layers=2, n_heads=2)).save_pretrained(ckpt)
    AutoTokenizer.from_pretrained(base_checkpoint()).save_pretrained(ckpt)  # same 30522-token vocab
    data = tmp_path / "data"
    generate_all(data, seed=3)

    report = train_intent_classifier(data, tmp_path / "out", checkpoint=ckpt, epochs=1, max_train_examples=64)
    assert report["model_type"] == "distilbert"
    assert set(report["test"]["per_class_f1"]) >= {"product_question", "escalation"}

    paths = export.export_variants(tmp_path / "out" / "hf", tmp_path / "onnx", "softmax")
    tok = AutoTokenizer.from_pretrained(tmp_path / "out" / "hf")
    feed = export.token_feeds(tok, ["is vol 3 in stock?", "refund pls"], max_length=32)[0]
    for path in paths.values():
        probs = export.session(path).run(None, feed)[0]
        assert probs.shape == (2, 8)
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
