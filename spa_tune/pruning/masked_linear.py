"""``BlockMaskedLinear``: an ``nn.Linear`` whose weight is multiplied by a block mask.

The layer takes over the parameters of the Linear it replaces (no copy) and adds one score per
``block_rows x block_cols`` block. Which blocks survive is decided by the pruning method and the
current threshold, which the training loop sets through ``spa_tune.pruning.control``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import binarizers

PRUNING_METHODS = ("magnitude", "topK", "threshold", "sigmoied_threshold", "l0")
MASK_INITS = ("constant", "uniform", "kaiming")


@dataclass(frozen=True)
class MaskSpec:
    """How a layer is masked: method, score initialisation and block shape."""

    pruning_method: str = "topK"
    mask_init: str = "constant"
    mask_scale: float = 0.0
    block_rows: int = 32
    block_cols: int = 32

    @property
    def uses_scores(self) -> bool:
        """Whether the method learns mask scores (all but magnitude)."""
        return self.pruning_method != "magnitude"


def init_scores(scores: torch.Tensor, mask_init: str, mask_scale: float) -> None:
    """Initialise scores in place: constant ``mask_scale``, U(-scale, scale) or Kaiming-uniform."""
    with torch.no_grad():
        if mask_init == "constant":
            scores.fill_(mask_scale)
        elif mask_init == "uniform":
            scores.uniform_(-mask_scale, mask_scale)
        elif mask_init == "kaiming":
            nn.init.kaiming_uniform_(scores, a=math.sqrt(5))
        else:
            raise ValueError(f"unknown mask_init {mask_init!r}")


class BlockMaskedLinear(nn.Module):
    """A Linear layer pruned by blocks; ``forward`` computes ``x (W * M)^T + b``."""

    def __init__(self, linear: nn.Linear, spec: MaskSpec):
        super().__init__()
        out_features, in_features = linear.weight.shape
        if out_features % spec.block_rows or in_features % spec.block_cols:
            raise ValueError(
                f"block {spec.block_rows}x{spec.block_cols} does not divide weight {out_features}x{in_features}"
            )
        self.in_features, self.out_features = in_features, out_features
        self.spec = spec
        self.weight = linear.weight
        self.bias = linear.bias
        self.block_grid = (out_features // spec.block_rows, in_features // spec.block_cols)
        if spec.uses_scores:
            self.mask_scores = nn.Parameter(torch.empty(self.block_grid, device=linear.weight.device))
            init_scores(self.mask_scores, spec.mask_init, spec.mask_scale)
        else:
            self.register_parameter("mask_scores", None)
        self.threshold = 1.0
        # Set by the global ranking of ``control.apply_threshold`` or by a target density
        # (``control.set_masks``); None means the layer decides alone.
        self.global_keep: torch.Tensor | None = None

    def adapted_weight(self) -> torch.Tensor:
        """The weight before masking (the base weight here; SPLoPA adds its update)."""
        return self.weight

    def block_mask(self, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Mask with one entry per block for the current threshold and mode."""
        method = self.spec.pruning_method
        if method == "magnitude":
            if self.global_keep is not None:
                return self.global_keep.to(self.weight.dtype)
            source = self.adapted_weight() if weight is None else weight
            return binarizers.magnitude_mask(source, self.threshold, self.spec.block_rows, self.spec.block_cols)
        scores = self.mask_scores.reshape(self.block_grid)  # scores shared by several layers are stored once
        if method == "topK":
            if self.global_keep is not None:
                return binarizers.straight_through(scores, self.global_keep)
            return binarizers.topk_mask(scores, self.threshold)
        if method in ("threshold", "sigmoied_threshold"):
            if self.global_keep is not None:  # a target density: the blocks kept are chosen across layers
                return binarizers.straight_through(scores, self.global_keep)
            return binarizers.threshold_mask(scores, self.threshold, sigmoid=method == "sigmoied_threshold")
        if method == "l0":
            gates = binarizers.l0_mask(scores, self.training)
            return gates if self.global_keep is None else gates * self.global_keep.to(gates.dtype)
        raise ValueError(f"unknown pruning method {method!r}")

    def masked_weight(self) -> torch.Tensor:
        """The weight the forward pass uses: adapted weight times the block mask, block by block."""
        weight = self.adapted_weight()
        mask = self.block_mask(weight)
        return binarizers.apply_block_mask(weight, mask, self.spec.block_rows, self.spec.block_cols)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` through the masked (and, for SPLoPA, adapted) weight and the bias."""
        return F.linear(x, self.masked_weight(), self.bias)

    def extra_repr(self) -> str:
        """Sizes, pruning method and block shape, for ``print(model)``."""
        s = self.spec
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"method={s.pruning_method}, block={s.block_rows}x{s.block_cols}"
        )
