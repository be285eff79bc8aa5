"""L1 and L0 penalties on the mask scores, averaged over masked layers (seed-notes)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from .binarizers import L0_BETA, L0_LEFT, L0_RIGHT

# Shift of the hard-concrete gate's probability of being non-zero: beta * ln(-l / r).
_L0_SHIFT = L0_BETA * math.log(-L0_LEFT / L0_RIGHT)


def score_penalty(scores: torch.Tensor, kind: str) -> torch.Tensor:
    """Penalty of one layer's scores: mean of ``sigmoid(S)`` (l1) or ``sigmoid(S - b ln(-l/r))`` (l0)."""
    if kind == "l1":
        return torch.sigmoid(scores).sum() / scores.numel()
    if kind == "l0":
        return torch.sigmoid(scores - _L0_SHIFT).sum() / scores.numel()
    raise ValueError(f"unknown regularization {kind!r}")


def regularization(all_scores: Iterable[torch.Tensor], kind: str) -> torch.Tensor:
    """Average of ``score_penalty`` over the layers whose scores are given."""
    penalties = [score_penalty(s, kind) for s in all_scores]
    if not penalties:
        raise ValueError("regularization needs at least one masked layer with scores")
    return torch.stack(penalties).mean()
