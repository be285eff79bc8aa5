"""Speed of the masked layers against a dense ``nn.Linear``, measured side by side in one run.

BERT-base shapes (768x768, 3072x768, 768x3072), a batch of 8 x 384 tokens, forward + backward
with the input requiring gradients as it does inside a network. Variants are timed in interleaved
rounds (the order rotates every round) and compared by the median of the per-round ratios, so
that drift of the machine's speed affects both sides of a ratio alike. Targets: block-masked (fine-pruning) <= 1.05 x dense,
SPLoPA masked layer <= 1.30 x dense.

Run: ``make bench`` (or ``python bench/masked_layers.py --rounds 20``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from spa_tune.adapters.splopa import SplopaLinear, SplopaPrototypes
from spa_tune.pruning.masked_linear import BlockMaskedLinear, MaskSpec

SHAPES = [(768, 768), (768, 3072), (3072, 768)]  # (in_features, out_features)
TARGETS = {"block-masked": 1.05, "splopa": 1.30}


def make_layers(in_features: int, out_features: int, method: str) -> dict[str, torch.nn.Module]:
    """Dense, block-masked and SPLoPA layers built on copies of one Linear."""
    torch.manual_seed(0)
    base = torch.nn.Linear(in_features, out_features)
    spec = MaskSpec(method, mask_init="kaiming", block_rows=32, block_cols=32)
    masked = BlockMaskedLinear(_copy(base), spec)
    prototypes = SplopaPrototypes(64, 2, 32, 32, init_range=1e-4)
    splopa = SplopaLinear(_copy(base), spec, prototypes)
    for layer in (masked, splopa):
        layer.threshold = 0.5
    return {"dense": base, "block-masked": masked, "splopa": splopa}


def _copy(linear: torch.nn.Linear) -> torch.nn.Linear:
    new = torch.nn.Linear(linear.in_features, linear.out_features)
    new.load_state_dict(linear.state_dict())
    return new


def step_time(layer: torch.nn.Module, x: torch.Tensor) -> float:
    """Seconds for one forward + backward pass."""
    layer.zero_grad(set_to_none=True)
    x.grad = None
    start = time.perf_counter()
    layer(x).sum().backward()
    return time.perf_counter() - start


def measure(in_features: int, out_features: int, method: str, rounds: int, warmup: int = 3):
    """Median seconds per variant and median per-round ratio to dense, variants interleaved."""
    layers = make_layers(in_features, out_features, method)
    names = list(layers)
    x = torch.randn(8, 384, in_features, requires_grad=True)
    times: dict[str, list[float]] = {name: [] for name in layers}
    for round_index in range(warmup + rounds):
        order = names[round_index % len(names):] + names[: round_index % len(names)]
        for name in order:
            seconds = step_time(layers[name], x)
            if round_index >= warmup:
                times[name].append(seconds)
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = {
        name: statistics.median(t / d for t, d in zip(times[name], times["dense"])) for name in TARGETS
    }
    return medians, ratios


def main() -> int:
    """Print a table of times and ratios; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--method", default="topK", help="pruning method of the masked layers")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 8 x 384 tokens, forward+backward, "
          f"{args.rounds} interleaved rounds, pruning_method {args.method}, 32x32 blocks")
    print(f"{'layer (in->out)':<18}{'dense ms':>10}{'masked ms':>11}{'ratio':>8}{'splopa ms':>11}{'ratio':>8}")
    worst = {name: 0.0 for name in TARGETS}
    for in_features, out_features in SHAPES:
        med, ratios = measure(in_features, out_features, args.method, args.rounds)
        for name, ratio in ratios.items():
            worst[name] = max(worst[name], ratio)
        print(f"{f'{in_features}->{out_features}':<18}{med['dense'] * 1e3:>10.1f}{med['block-masked'] * 1e3:>11.1f}"
              f"{ratios['block-masked']:>8.3f}{med['splopa'] * 1e3:>11.1f}{ratios['splopa']:>8.3f}")
    ok = True
    for name, target in TARGETS.items():
        verdict = "met" if worst[name] <= target else "MISSED"
        ok &= worst[name] <= target
        print(f"{name}: worst ratio {worst[name]:.3f} (target <= {target:.2f}): {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
