"""Intent classifier: an HF encoder + classification head fine-tuned on the generated intent data.

Works with any HF encoder checkpoint that ``AutoModelForSequenceClassification`` can load (BERT/MiniLM,
DistilBERT, ...): the head is created fresh with the 8 fixed labels.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from model_repository.training.common import batches, linear_schedule, optimizer_step, progress, read_jsonl, seed_everything
from server.intents import INTENT_LABELS, LABEL_TO_ID
from server.retrieval.query import expand as classifier_input


def classification_report(y_true: list[int], y_pred: list[int]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    labels = list(range(len(INTENT_LABELS)))
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "n": len(y_true),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)), 4),
        "per_class_f1": {INTENT_LABELS[i]: round(float(f), 4) for i, f in enumerate(per_class)},
        "confusion_matrix": {"labels": list(INTENT_LABELS), "rows_true_cols_pred": confusion_matrix(y_true, y_pred, labels=labels).tolist()},
    }


def model_inputs(model: Any, enc: Any) -> dict[str, Any]:
    """Only the tensors this architecture's forward() takes (DistilBERT has no token_type_ids)."""
    import inspect

    accepted = inspect.signature(model.forward).parameters
    return {k: v for k, v in enc.items() if k in accepted}


def predict_torch(model: Any, tokenizer: Any, texts: list[str], *, max_length: int = 64, batch_size: int = 64) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.inference_mode():
        for chunk in batches(texts, batch_size):
            enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            out.append(torch.softmax(model(**model_inputs(model, enc)).logits, dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, len(INTENT_LABELS)), np.float32)


def train_intent_classifier(
    data_dir: Path,
    out_dir: Path,
    *,
    checkpoint: Path,
    epochs: int = 2,
    batch_size: int = 32,
    lr: float = 1e-4,
    max_length: int = 48,
    seed: int = 13,
    max_train_examples: int | None = None,
) -> dict[str, Any]:
    """Fine-tune ``checkpoint`` and save the HF model + tokenizer to ``out_dir/hf``. Returns a report."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    seed_everything(seed)
    rng = random.Random(seed)
    train = read_jsonl(data_dir / "intents" / "train.jsonl")
    val = read_jsonl(data_dir / "intents" / "validation.jsonl")
    test = read_jsonl(data_dir / "intents" / "test.jsonl")
    for row in (*train, *val, *test):  # the classifier's input is the message + English glosses, as served
        row["text"] = classifier_input(row["text"])
    if max_train_examples:
        train = rng.sample(train, min(max_train_examples, len(train)))

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint,
        num_labels=len(INTENT_LABELS),
        id2label=dict(enumerate(INTENT_LABELS)),
        label2id=dict(LABEL_TO_ID),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * ((len(train) + batch_size - 1) // batch_size)
    scheduler = linear_schedule(optimizer, steps)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.05)

    best_acc, best_state, history = -1.0, None, []
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        bar = progress(list(batches(train, batch_size, rng=rng)), desc=f"intent epoch {epoch + 1}/{epochs}", unit="batch")
        for batch in bar:
            enc = tokenizer([b["text"] for b in batch], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            labels = torch.tensor([LABEL_TO_ID[b["label"]] for b in batch])
            loss = loss_fn(model(**model_inputs(model, enc)).logits, labels)
            optimizer_step(loss, model, optimizer, scheduler, bar)
        probs = predict_torch(model, tokenizer, [v["text"] for v in val], max_length=max_length)
        acc = float((probs.argmax(1) == np.array([LABEL_TO_ID[v["label"]] for v in val])).mean())
        history.append({"epoch": epoch + 1, "val_accuracy": round(acc, 4)})
        print(f"[intent] epoch {epoch + 1}: validation accuracy {acc:.4f}", flush=True)
        if acc > best_acc:
            best_acc, best_state = acc, {k: v.detach().clone() for k, v in model.state_dict().items()}
    train_s = time.perf_counter() - started
    if best_state is not None:
        model.load_state_dict(best_state)

    hf_dir = out_dir / "hf"
    model.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)

    test_probs = predict_torch(model, tokenizer, [t["text"] for t in test], max_length=max_length)
    report = {
        "checkpoint": str(checkpoint),
        "model_type": model.config.model_type,
        "train_examples": len(train),
        "epochs": epochs,
        "train_seconds": round(train_s, 1),
        "examples_per_second": round(epochs * len(train) / max(train_s, 1e-9), 1),
        "history": history,
        "test": classification_report([LABEL_TO_ID[t["label"]] for t in test], test_probs.argmax(1).tolist()),
    }
    handwritten = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "intents_handwritten.jsonl"
    if handwritten.exists():
        rows = read_jsonl(handwritten)
        for row in rows:
            row["text"] = classifier_input(row["text"])
        probs = predict_torch(model, tokenizer, [r["text"] for r in rows], max_length=max_length)
        report["handwritten"] = classification_report([LABEL_TO_ID[r["label"]] for r in rows], probs.argmax(1).tolist())
    return report
