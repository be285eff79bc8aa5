"""SPLoPA layer: frozen base weight plus a low-rank Kronecker update, both pruned by one block mask.

For a weight of shape (n, m) and blocks of shape (p, q) the update is ``sum_k kron(A_k, P_k)`` with
K prototypes ``P_k = C_k R_k`` (C_k: p x r, R_k: r x q) and position weights A of shape
(K, n/p, m/q): block (a, b) of the update is ``sum_k A[k, a, b] P_k``. The update is computed as one
matrix product, ``A`` as a (blocks x K) matrix times the K flattened prototypes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ...pruning.masked_linear import BlockMaskedLinear, MaskSpec


class SplopaPrototypes(nn.Module):
    """K rank-r prototypes of shape (p, q); may be shared by several layers of one model."""

    def __init__(self, num_prototypes: int, rank: int, block_rows: int, block_cols: int, init_range: float):
        super().__init__()
        self.num_prototypes, self.rank = num_prototypes, rank
        self.block_rows, self.block_cols = block_rows, block_cols
        self.left = nn.Parameter(torch.empty(num_prototypes, block_rows, rank))
        self.right = nn.Parameter(torch.empty(num_prototypes, rank, block_cols))
        with torch.no_grad():
            self.left.uniform_(-init_range, init_range)
            nn.init.kaiming_uniform_(self.right, a=math.sqrt(5))

    def flat(self) -> torch.Tensor:
        """The K prototypes ``C_k R_k``, each flattened to a row: shape (K, p*q)."""
        return torch.bmm(self.left, self.right).reshape(self.num_prototypes, -1)

    def dense(self) -> torch.Tensor:
        """The K prototypes as a (K, p, q) tensor."""
        return torch.bmm(self.left, self.right)


def block_update(position_weights: torch.Tensor, prototypes_flat: torch.Tensor, block_rows: int, block_cols: int) -> torch.Tensor:
    """Full (n, m) update from position weights (K, n/p, m/q) and flattened prototypes (K, p*q)."""
    k, grid_rows, grid_cols = position_weights.shape
    per_block = position_weights.reshape(k, grid_rows * grid_cols).t() @ prototypes_flat
    blocks = per_block.reshape(grid_rows, grid_cols, block_rows, block_cols)
    return blocks.permute(0, 2, 1, 3).reshape(grid_rows * block_rows, grid_cols * block_cols)


class SplopaLinear(BlockMaskedLinear):
    """Block-masked Linear whose frozen weight is adapted by SPLoPA; the bias stays learnable."""

    def __init__(self, linear: nn.Linear, spec: MaskSpec, prototypes: SplopaPrototypes):
        super().__init__(linear, spec)
        if (prototypes.block_rows, prototypes.block_cols) != (spec.block_rows, spec.block_cols):
            raise ValueError("prototype shape must equal the mask block shape")
        self.weight.requires_grad_(False)
        self.prototypes = prototypes
        grid = (prototypes.num_prototypes, *self.block_grid)
        self.position_weights = nn.Parameter(torch.empty(grid, device=linear.weight.device))
        nn.init.kaiming_uniform_(self.position_weights, a=math.sqrt(5))

    def update(self) -> torch.Tensor:
        """The adapter's (n, m) weight update."""
        return block_update(self.position_weights, self.prototypes.flat(), self.spec.block_rows, self.spec.block_cols)

    def adapted_weight(self) -> torch.Tensor:
        """Frozen base weight plus the adapter update."""
        return self.weight + self.update()
