"""Tiny search spaces for the experiment tests (the shared Ray runtime is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

# Trials of the tiny model: a few hundred generated questions, four short epochs.
TINY_TRIAL = dict(
    dataset="generated",
    generated_train_questions=320,
    generated_eval_questions=60,
    max_seq_length=64,
    doc_stride=16,
    max_query_length=32,
    per_gpu_train_batch_size=32,
    per_gpu_eval_batch_size=64,
    num_train_epochs=4,
    learning_rate=3e-3,
    mask_scores_learning_rate=1e-2,
    adapter_learning_rate=3e-3,
    pruning_method="topK",
    initial_threshold=1.0,
    final_threshold=0.5,
    warmup_steps=4,
    initial_warmup=1,
    final_warmup=2,
    eval_every=10,
    keep_checkpoints=1,
    num_splopa_prototypes=8,
    splopa_prototype_rank=2,
)


def write_space(folder: Path, model_dir: str, name: str, **sections) -> Path:
    """A space file for the tiny model under ``folder`` (experiments go to ``folder/runs``)."""
    trial = dict(TINY_TRIAL, model=model_dir, **sections.pop("trial", {}))
    space = dict(name=name, trial=trial, storage_path=str(folder / "runs"), **sections)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path
