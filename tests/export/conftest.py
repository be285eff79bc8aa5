"""Tiny trained trials (fine-pruning by blocks and by heads/neurons, SPLoPA) to export."""

from __future__ import annotations

from pathlib import Path

import pytest

from spa_tune.export.source import newest_checkpoint
from spa_tune.trial.runner import run_trial

TINY_RUN = dict(
    dataset="generated", generated_train_questions=320, generated_eval_questions=60, max_seq_length=64, doc_stride=16,
    max_query_length=32, per_gpu_train_batch_size=32, num_train_epochs=3, learning_rate=3e-3,
    adapter_learning_rate=3e-3, pruning_method="topK", final_threshold=0.3, warmup_steps=4,
    num_splopa_prototypes=8, splopa_prototype_rank=2, keep_checkpoints=1,
)
TRIALS = {
    "blocks": dict(method="fine-pruning"),
    "heads_neurons": dict(method="fine-pruning", mask_structure="heads_neurons", mask_init="uniform", mask_scale=0.1,
                          final_threshold=0.5),
    "dense": dict(method="dense", num_train_epochs=1),
    "splopa": dict(method="splopa"),
    "splopa_l0": dict(method="splopa", pruning_method="l0", regularization="l0", final_lambda=1.0,
                      initial_threshold=1.0, final_threshold=1.0, mask_init="constant", mask_scale=2.0),
}


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_model_dir) -> dict[str, Path]:
    """Trial folders of four short tiny-BERT runs, by name; each holds its newest checkpoint."""
    root = tmp_path_factory.mktemp("trained")
    folders = {}
    for name, values in TRIALS.items():
        folder = root / name
        run_trial({**TINY_RUN, **values, "model": tiny_model_dir, "output_dir": str(folder)})
        newest_checkpoint(folder)
        folders[name] = folder
    return folders
