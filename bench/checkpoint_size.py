"""Bytes of a SPLoPA checkpoint against a fine-pruning checkpoint of the same model, side by side in one run.

The trials train MiniLM-L6-H384 (the offline default ``model: minilm``) for a few steps on the
generated data set, 32x32 blocks, topK, and write a checkpoint at their end: fine-pruning, SPLoPA as
the quickstart sets it (64 prototypes of rank 2) and SPLoPA with 32 prototypes. A checkpoint holds
what learns (``requires_grad``), the buffers, the optimiser, scheduler and scaler states, the RNG
states and the fingerprint of the frozen base. Target: SPLoPA / fine-pruning <= 0.05.

A lower bound: SPLoPA learns K position weights per p x q block, K / (p q) of the masked weights
(6.25 % for K = 64 and 32x32 blocks), and an exactly resumable checkpoint keeps each learned value
with its two AdamW moments, as fine-pruning's does.

Run: ``python bench/checkpoint_size.py``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from spa_tune.trial import run_trial
from spa_tune.trial.checkpoint import STATE_FILE

TARGET = 0.05
TRIAL = dict(
    model="minilm", dataset="generated", generated_train_questions=64, generated_eval_questions=16,
    max_seq_length=128, doc_stride=32, max_query_length=32, per_gpu_train_batch_size=8, max_steps=2,
    pruning_method="topK", final_threshold=0.5, device="cpu", precision="fp32",
)


def folder_bytes(folder: Path) -> int:
    """Bytes of every file under ``folder``."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def checkpoint_bytes(method: str, work: Path, **keys) -> tuple[int, int, int]:
    """(state file bytes, checkpoint folder bytes, stored tensors) of a short trial's last checkpoint."""
    sizes = []

    def report(metrics, checkpoint):
        state = torch.load(Path(checkpoint) / STATE_FILE, map_location="cpu", weights_only=False)
        stored = sum(t.numel() for t in state["model"].values())
        sizes.append(((Path(checkpoint) / STATE_FILE).stat().st_size, folder_bytes(Path(checkpoint)), stored))

    name = "-".join([method, *(f"{k}{v}" for k, v in keys.items())])
    run_trial(dict(TRIAL, method=method, output_dir=str(work / name), **keys), report=report)
    return sizes[-1]


def main() -> None:
    """Print both checkpoints' sizes and their ratio."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "fine-pruning": checkpoint_bytes("fine-pruning", Path(tmp)),
            "splopa K=64 r=2": checkpoint_bytes("splopa", Path(tmp), num_splopa_prototypes=64, splopa_prototype_rank=2),
            "splopa K=32 r=2": checkpoint_bytes("splopa", Path(tmp), num_splopa_prototypes=32, splopa_prototype_rank=2),
        }
    for name, (state, folder, stored) in runs.items():
        print(f"{name:>16}: {state / 1e6:8.2f} MB state file, {folder / 1e6:8.2f} MB folder, {stored:,} model values stored")
    for name, (_, folder, _) in runs.items():
        if name.startswith("splopa"):
            ratio = folder / runs["fine-pruning"][1]
            verdict = "OK" if ratio <= TARGET else "MISSED"
            print(f"{name} / fine-pruning checkpoint bytes: {ratio:.4f} (target <= {TARGET}) {verdict}")


if __name__ == "__main__":
    main()
