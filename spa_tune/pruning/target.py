"""Target density: a trial that ends at the remaining % it was given (``target_remaining_pct``).

Remaining % is counted as in seed-notes: kept weights of the masked Linear layers plus every
unmasked encoder parameter (biases, LayerNorms), over all encoder parameters. A target therefore
asks the masked layers to keep the fraction ``keep_fraction_for`` of their weights.

- Ranked methods (``topK``, ``magnitude``): that fraction becomes the final kept fraction of the
  cubic schedule (``final_threshold``), per layer or globally as configured.
- Score-threshold methods (``threshold``, ``sigmoied_threshold``, ``l0``): the threshold is adapted
  at every step so that the kept share of masked weights follows the same cubic schedule from 1 to
  that fraction. The blocks kept are those with the highest scores over all layers (weighted by the
  weights each score governs), so how the density is spread over layers is still learned; the
  regularization weight rises with the schedule's progress to ``final_lambda``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import SpaTuneError
from .masked_linear import BlockMaskedLinear
from .schedule import lambda_at, threshold_at

SCORE_THRESHOLD_METHODS = ("threshold", "sigmoied_threshold", "l0")


def follows_density(cfg) -> bool:
    """Whether masks are set from a scheduled kept fraction rather than a threshold on scores."""
    return cfg.masked and cfg.target_remaining_pct is not None and cfg.pruning_method in SCORE_THRESHOLD_METHODS


def keep_fraction_for(target_pct: float, encoder_params: int, masked_weights: int) -> float:
    """Fraction of the masked weights to keep so that the encoder ends at ``target_pct`` remaining.

    Raises a one-line error when the target is below what the unmasked parameters alone leave.
    """
    unmasked = encoder_params - masked_weights
    floor_pct = 100.0 * unmasked / encoder_params
    if masked_weights <= 0 or target_pct <= floor_pct:
        raise SpaTuneError(
            f"target_remaining_pct: {target_pct:g} is not above {floor_pct:.2f} %, what the encoder's unmasked "
            f"parameters (biases, LayerNorms: {unmasked:,} of {encoder_params:,}) leave on their own"
        )
    return min(1.0, (target_pct / 100.0 * encoder_params - unmasked) / masked_weights)


@dataclass(frozen=True)
class PruningSchedule:
    """What the masks follow during training: a threshold, or (``by_density``) a kept fraction.

    ``at(step)`` is the value for the masks after ``step`` updates; ``regularization_weight(value)``
    the penalty's weight at that value.
    """

    initial: float
    final: float
    total_steps: int
    warmup_steps: int
    initial_warmup: float
    final_warmup: float
    final_lambda: float
    final_threshold: float
    by_density: bool = False
    masked: bool = True

    def at(self, step: int) -> float:
        """Scheduled threshold, or kept fraction when ``by_density`` (1.0 for dense trials)."""
        if not self.masked:
            return 1.0
        return threshold_at(
            step, self.total_steps, self.warmup_steps, self.initial, self.final, self.initial_warmup, self.final_warmup
        )

    def regularization_weight(self, value: float) -> float:
        """``final_lambda * threshold / final_threshold``; by density, scaled by the schedule's progress."""
        if not self.by_density:
            return lambda_at(value, self.final_threshold, self.final_lambda)
        if self.final >= 1.0:
            return self.final_lambda
        return self.final_lambda * (1.0 - value) / (1.0 - self.final)


def masked_weight_count(model: nn.Module) -> int:
    """Weights of all block-masked layers of ``model``."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, BlockMaskedLinear))


def pruning_schedule(cfg, total_steps: int, encoder_params: int = 0, masked_weights: int = 0) -> PruningSchedule:
    """The schedule of a trial; with ``target_remaining_pct`` its final value reaches the target.

    ``encoder_params`` and ``masked_weights`` (from the prepared model) are needed only with a target.
    """
    initial, final, by_density = cfg.initial_threshold, cfg.final_threshold, False
    if cfg.masked and cfg.target_remaining_pct is not None:
        final = keep_fraction_for(cfg.target_remaining_pct, encoder_params, masked_weights)
        by_density = follows_density(cfg)
        if by_density:
            initial = 1.0
    return PruningSchedule(
        initial=initial, final=final, total_steps=total_steps, warmup_steps=cfg.warmup_steps,
        initial_warmup=cfg.initial_warmup, final_warmup=cfg.final_warmup, final_lambda=cfg.final_lambda,
        final_threshold=cfg.final_threshold, by_density=by_density, masked=cfg.masked,
    )


@torch.no_grad()
def density_keep_masks(layers: list[BlockMaskedLinear], fraction: float) -> list[torch.Tensor]:
    """Keep the highest-scoring blocks of all layers until ``fraction`` of their weights is kept.

    A score tensor shared by several layers (heads and neurons) is ranked once, weighted by every
    weight it governs; the returned masks (one per layer, grid shape) are boolean.
    """
    groups: dict[int, tuple[torch.Tensor, int]] = {}
    for layer in layers:
        scores = layer.mask_scores
        _, weight = groups.get(id(scores), (scores, 0))
        groups[id(scores)] = (scores, weight + layer.spec.block_rows * layer.spec.block_cols)
    tensors = [scores for scores, _ in groups.values()]
    values = torch.cat([s.detach().reshape(-1).float().cpu() for s in tensors])
    weights = torch.cat([torch.full((s.numel(),), float(w), dtype=torch.float64) for s, w in groups.values()])
    order = torch.argsort(values, descending=True, stable=True)
    budget = fraction * float(weights.sum())
    kept_sorted = torch.cumsum(weights[order], 0) <= budget * (1 + 1e-9)
    keep = torch.zeros(values.numel(), dtype=torch.bool)
    keep[order[kept_sorted]] = True
    by_tensor = dict(zip(groups, torch.split(keep, [s.numel() for s in tensors])))
    return [
        by_tensor[id(layer.mask_scores)].reshape(layer.block_grid).to(layer.mask_scores.device) for layer in layers
    ]

