"""Score a model on a trial's evaluation set, to check an export answers as the trained model does."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from torch import nn

from ..config import TrialConfig
from ..data.features import build_eval_dataset
from ..data.generate import write_generated_squad
from ..data.loading import load_eval_split
from ..model.loading import load_tokenizer
from ..trial.evaluate import evaluate
from ..trial.setup import GENERATED_DATASET, quiet_library_progress_bars


def eval_file_of(cfg: TrialConfig, workdir: Path) -> str | None:
    """The trial's evaluation file; the generated set is written again (it is deterministic)."""
    if cfg.eval_file or cfg.dataset != GENERATED_DATASET:
        return cfg.eval_file
    _, dev = write_generated_squad(workdir / "generated-data", cfg.generated_train_questions, cfg.generated_eval_questions, seed=0)
    return str(dev)


def score_models(models: dict[str, nn.Module], cfg: TrialConfig, max_eval_samples: int | None = None) -> dict[str, dict]:
    """EM, F1 and predictions of each model on the trial's evaluation set (same windows for all)."""
    quiet_library_progress_bars()
    tokenizer = load_tokenizer(cfg.tokenizer or cfg.model)
    results = {}
    with tempfile.TemporaryDirectory(prefix="spa-tune-check-") as tmp:
        workdir = Path(tmp)
        examples = load_eval_split(
            None if cfg.dataset == GENERATED_DATASET else cfg.dataset, eval_file_of(cfg, workdir),
            max_eval_samples or cfg.max_eval_samples,
        )
        features = build_eval_dataset(examples, tokenizer, cfg.max_seq_length, cfg.doc_stride, cfg.max_query_length)
        for name, model in models.items():
            scores = evaluate(model, examples, features, cfg, torch.device("cpu"), workdir / name)
            predictions = Path(scores.pop("predictions_file")).read_text()
            results[name] = {**scores, "predictions": predictions}
    return results
