"""Score models on a trial's evaluation set: an export against its trained model, an untrained model for the results page."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from ..config import TrialConfig
from ..data.features import build_eval_dataset
from ..data.loading import load_eval_split
from ..model.loading import load_tokenizer
from .evaluate import evaluate
from .setup import GENERATED_DATASET, data_files, quiet_library_progress_bars
from .teacher import tokenizer_name


def score_models(models: dict[str, nn.Module], cfg: TrialConfig, max_eval_samples: int | None = None) -> dict[str, dict]:
    """EM, F1 and predictions of each model on the trial's evaluation set (same windows for all)."""
    quiet_library_progress_bars()
    tokenizer = load_tokenizer(tokenizer_name(cfg.model, cfg.tokenizer))
    results = {}
    with tempfile.TemporaryDirectory(prefix="spa-tune-check-") as tmp:
        workdir = Path(tmp)
        examples = load_eval_split(
            # the trial's eval file; the generated set is written again (it is deterministic)
            None if cfg.dataset == GENERATED_DATASET else cfg.dataset,
            data_files(cfg.model_copy(update={"output_dir": str(workdir)}))[1],
            max_eval_samples or cfg.max_eval_samples,
            cfg.max_eval_articles,
        )
        features = build_eval_dataset(examples, tokenizer, cfg.max_seq_length, cfg.doc_stride, cfg.max_query_length)
        for name, model in models.items():
            scores = evaluate(model, examples, features, cfg, torch.device("cpu"), workdir / name)
            predictions = Path(scores.pop("predictions_file")).read_text()
            results[name] = {**scores, "predictions": predictions}
    return results
