"""Drive the masked layers of a model: find them, set the threshold, rank globally, collect scores."""

from __future__ import annotations

import torch
from torch import nn

from . import binarizers
from .masked_linear import BlockMaskedLinear
from .target import density_keep_masks, follows_density


def masked_layers(model: nn.Module) -> list[tuple[str, BlockMaskedLinear]]:
    """All block-masked layers of ``model`` with their qualified names, in module order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, BlockMaskedLinear)]


def ranking_values(layer: BlockMaskedLinear) -> torch.Tensor:
    """What a global ranking compares: scores for topK, block magnitudes for magnitude."""
    if layer.spec.pruning_method == "magnitude":
        return binarizers.block_magnitudes(layer.adapted_weight(), layer.spec.block_rows, layer.spec.block_cols)
    return layer.mask_scores.detach()


@torch.no_grad()
def global_keep_masks(layers: list[BlockMaskedLinear], fraction: float) -> list[torch.Tensor]:
    """Rank the blocks of all layers together and keep the top ``fraction`` of them."""
    values = [ranking_values(layer) for layer in layers]
    flat = torch.cat([v.reshape(-1) for v in values])
    keep = binarizers.top_fraction_mask(flat, fraction)
    return [part.reshape(v.shape) for part, v in zip(torch.split(keep, [v.numel() for v in values]), values)]


def apply_threshold(model: nn.Module, threshold: float, global_ranking: bool = False) -> None:
    """Set the threshold of every masked layer; with ``global_ranking`` rank blocks across layers.

    Call it before every training step and before evaluation: global masks are computed from the
    current scores (or weights, for magnitude) and stay fixed during the forward pass.
    """
    layers = [layer for _, layer in masked_layers(model)]
    for layer in layers:
        layer.threshold = threshold
        layer.global_keep = None
    if global_ranking and layers:
        for layer, keep in zip(layers, global_keep_masks(layers, threshold)):
            layer.global_keep = keep


def apply_kept_fraction(model: nn.Module, fraction: float) -> None:
    """Keep the top-scoring blocks across all masked layers until ``fraction`` of their weights remain."""
    layers = [layer for _, layer in masked_layers(model)]
    for layer, keep in zip(layers, density_keep_masks(layers, fraction)):
        layer.threshold = fraction
        layer.global_keep = keep


def set_masks(model: nn.Module, cfg, value: float) -> None:
    """Set every mask for a schedule value of trial ``cfg``: a threshold, or with a target density
    on a score-threshold method, the kept fraction of the masked weights."""
    if follows_density(cfg):
        apply_kept_fraction(model, value)
    else:
        apply_threshold(model, value, cfg.global_topk)


def all_mask_scores(model: nn.Module) -> list[torch.Tensor]:
    """The score tensors of every masked layer that has scores; a tensor shared by layers comes once."""
    unique = {id(layer.mask_scores): layer.mask_scores for _, layer in masked_layers(model) if layer.mask_scores is not None}
    return list(unique.values())


@torch.no_grad()
def eval_block_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Deterministic (evaluation-mode) block masks of every masked layer, by layer name."""
    masks = {}
    for name, layer in masked_layers(model):
        was_training = layer.training
        layer.eval()
        masks[name] = layer.block_mask().detach()
        layer.train(was_training)
    return masks
