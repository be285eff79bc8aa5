"""CPU inference latency of QA models on the same inputs, measured side by side."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

SEQUENCE_LENGTH = 384


def latency_inputs(config, sequence_length: int = SEQUENCE_LENGTH, seed: int = 0) -> dict[str, torch.Tensor]:
    """One random batch of size 1 (token ids past the special tokens), at most the model's positions."""
    length = min(sequence_length, getattr(config, "max_position_embeddings", sequence_length))
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, config.vocab_size, (1, length), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}


@torch.inference_mode()
def measure_latency(models: dict[str, nn.Module], inputs: dict[str, torch.Tensor], runs: int = 20, warmup: int = 3) -> dict[str, float]:
    """Median forward time in milliseconds of each model; the models take turns in every round."""
    for model in models.values():
        model.eval()
        for _ in range(warmup):
            model(**inputs)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(runs):
        for name, model in models.items():
            start = time.perf_counter()
            model(**inputs)
            times[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in times.items()}
