"""Evaluate a QA model: logits over all windows, n-best post-processing, official EM/F1."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..data.features import MODEL_COLUMNS
from ..data.postprocess import postprocess_predictions
from ..data.squad_metric import squad_scores, write_predictions
from .records import PREDICTIONS_FILE


@torch.no_grad()
def predict_logits(
    model, features, batch_size: int, device: torch.device, autocast: Callable = contextlib.nullcontext
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits of every feature, shape (features, sequence length), in fp32.

    ``autocast`` gives the context of each forward pass (the trial's precision).
    """
    inputs = features.with_format("torch", columns=[c for c in MODEL_COLUMNS if c in features.column_names])
    starts, ends = [], []
    for begin in range(0, len(inputs), batch_size):
        batch = {k: v.to(device) for k, v in inputs[begin : begin + batch_size].items()}
        with autocast():
            out = model(**batch)
        starts.append(out.start_logits.float().cpu().numpy())
        ends.append(out.end_logits.float().cpu().numpy())
    return np.concatenate(starts), np.concatenate(ends)


def evaluate(
    model, examples, features, cfg, device: torch.device, output_dir: str | Path, autocast: Callable = contextlib.nullcontext
) -> dict:
    """EM and F1 (percent) on ``examples``; writes ``predictions.json`` into ``output_dir``."""
    was_training = model.training
    model.eval()
    try:
        start, end = predict_logits(model, features, cfg.per_gpu_eval_batch_size, device, autocast)
    finally:
        model.train(was_training)
    predictions = postprocess_predictions(examples, features, start, end, cfg.n_best_size, cfg.max_answer_length)
    references = {ex["id"]: list(ex["answers"]["text"]) for ex in examples}
    scores = squad_scores(predictions, references)
    path = Path(output_dir) / PREDICTIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_predictions(predictions, path)
    return {"em": scores["em"], "f1": scores["f1"], "predictions_file": str(path)}
