"""Block masks from scores: topK, magnitude, threshold, sigmoied_threshold and hard-concrete L0.

Every function works on one score per block (a 2-D tensor of shape ``(rows/p, cols/q)``) and
returns a mask of the same shape. Binary masks are passed back with a straight-through gradient:
the gradient of the mask is handed to the scores unchanged.
"""

from __future__ import annotations

import math

import torch

# Hard-concrete stretch interval and temperature (seed-notes "Masked layers").
L0_LEFT = -0.1
L0_RIGHT = 1.1
L0_BETA = 2.0 / 3.0
# Threshold binarizers never keep fewer than this fraction of the blocks.
MIN_KEPT_FRACTION = 0.005


class _StraightThrough(torch.autograd.Function):
    """Returns a precomputed mask; the backward pass copies the gradient to the scores."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return mask.to(scores.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        return grad, None


def straight_through(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Use ``mask`` in the forward pass and pass its gradient straight to ``scores``."""
    return _StraightThrough.apply(scores, mask)


def kept_count(numel: int, fraction: float) -> int:
    """Number of blocks kept when keeping ``fraction`` of ``numel`` (floor, robust to fp error)."""
    return max(0, min(numel, math.floor(round(fraction * numel, 6))))


def top_fraction_mask(values: torch.Tensor, fraction: float) -> torch.Tensor:
    """Binary mask keeping exactly ``kept_count`` entries with the largest ``values``."""
    flat = values.detach().reshape(-1)
    mask = torch.zeros_like(flat, dtype=torch.bool)
    k = kept_count(flat.numel(), fraction)
    if k > 0:
        mask[torch.topk(flat, k, sorted=False).indices] = True
    return mask.reshape(values.shape)


def topk_mask(scores: torch.Tensor, fraction: float) -> torch.Tensor:
    """Movement pruning: keep the top ``fraction`` of blocks by score (straight-through)."""
    return straight_through(scores, top_fraction_mask(scores, fraction))


def block_magnitudes(weight: torch.Tensor, block_rows: int, block_cols: int) -> torch.Tensor:
    """Mean absolute weight of every ``block_rows x block_cols`` block."""
    rows, cols = weight.shape
    blocks = weight.detach().abs().reshape(rows // block_rows, block_rows, cols // block_cols, block_cols)
    return blocks.mean(dim=(1, 3))


def magnitude_mask(weight: torch.Tensor, fraction: float, block_rows: int, block_cols: int) -> torch.Tensor:
    """Magnitude pruning: keep the top ``fraction`` of blocks by mean absolute weight."""
    return top_fraction_mask(block_magnitudes(weight, block_rows, block_cols), fraction).to(weight.dtype)


def min_kept(numel: int) -> int:
    """Fewest blocks a threshold binarizer keeps (0.5 % of the blocks, at least one)."""
    return max(1, math.ceil(MIN_KEPT_FRACTION * numel))


def threshold_mask(scores: torch.Tensor, threshold: float, sigmoid: bool = False) -> torch.Tensor:
    """Keep blocks with ``S > threshold`` (or ``sigmoid(S) > threshold``), at least 0.5 % of them."""
    values = torch.sigmoid(scores.detach()) if sigmoid else scores.detach()
    mask = values > threshold
    floor = min_kept(mask.numel())
    if int(mask.sum()) < floor:
        mask = top_fraction_mask(scores, floor / mask.numel())
    return straight_through(scores, mask)


def l0_mask(scores: torch.Tensor, training: bool) -> torch.Tensor:
    """Hard-concrete gate: stochastic in training, ``sigmoid(S)`` stretched and clamped in eval."""
    if training:
        u = torch.empty_like(scores).uniform_(1e-4, 1 - 1e-4)
        s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + scores) / L0_BETA)
    else:
        s = torch.sigmoid(scores)
    return torch.clamp(s * (L0_RIGHT - L0_LEFT) + L0_LEFT, 0.0, 1.0)


def apply_block_mask(weight: torch.Tensor, block_mask: torch.Tensor, block_rows: int, block_cols: int) -> torch.Tensor:
    """``weight`` times the block mask broadcast over every block, without materialising the full mask."""
    rows, cols = block_mask.shape
    blocks = weight.reshape(rows, block_rows, cols, block_cols)
    return (blocks * block_mask[:, None, :, None]).reshape(weight.shape)
