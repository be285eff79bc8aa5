"""Training step time in bf16 against fp32 on this machine's CPU, measured side by side in one run.

One fine-pruning (topK, 32x32 blocks) MiniLM-L6-H384 trial's training step — mask update, forward,
QA loss, backward, clipping and AdamW — at batch 8 x 256 tokens, timed in interleaved rounds (fp32
then bf16, then the other order) after a warm-up, compared by the median of per-round ratios. CPUs
without bf16 units emulate it and may be slower; the figure that matters is the GPU one
(``bench/gpu_check.sh``).

Run: ``python bench/precision_step.py --rounds 6``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from spa_tune.config import validate_trial_config
from spa_tune.pruning.control import set_masks
from spa_tune.trial.optim import build_optimizer
from spa_tune.trial.precision import backward_and_step
from spa_tune.trial.runner import training_loss
from spa_tune.trial.setup import build_trial

TRIAL = dict(
    model="minilm", method="fine-pruning", pruning_method="topK", final_threshold=0.5, dataset="generated",
    generated_train_questions=64, generated_eval_questions=8, max_seq_length=256, doc_stride=64,
    max_query_length=32, per_gpu_train_batch_size=8, device="cpu",
)


def stepper(precision: str, output_dir: str):
    """A function running one training step of a fresh trial at ``precision``."""
    setup = build_trial(validate_trial_config(dict(TRIAL, precision=precision, output_dir=output_dir)))
    optimizer, _ = build_optimizer(setup.model, setup.cfg, 100)
    params = [p for p in setup.model.parameters() if p.requires_grad]
    batch = setup.train_features[list(range(setup.cfg.per_gpu_train_batch_size))]
    setup.model.train()

    def step() -> float:
        started = time.perf_counter()
        set_masks(setup.model, setup.cfg, 0.75)
        loss = training_loss(setup, batch, 0.0)
        backward_and_step(setup.precision, loss, optimizer, params, 1.0)
        return time.perf_counter() - started

    return step


def main() -> None:
    """Print per-precision median step times and the median bf16/fp32 ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        steps = {name: stepper(name, f"{tmp}/{name}") for name in ("fp32", "bf16")}
        for step in steps.values():  # warm-up
            step()
        times = {name: [] for name in steps}
        ratios = []
        for round_ in range(args.rounds):
            order = ["fp32", "bf16"] if round_ % 2 == 0 else ["bf16", "fp32"]
            got = {name: steps[name]() for name in order}
            for name, seconds in got.items():
                times[name].append(seconds)
            ratios.append(got["bf16"] / got["fp32"])
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values) * 1000:8.1f} ms per step "
              f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})")
    print(f"bf16 / fp32 step time on this CPU: median {statistics.median(ratios):.2f} "
          f"(rounds {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
