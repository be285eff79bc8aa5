"""Fold masks and adapters into plain weights: every masked layer becomes an ``nn.Linear`` again."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..model.inject import replace_module
from ..pruning.control import masked_layers


def plain_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    """An ``nn.Linear`` holding copies of ``weight`` (out, in) and ``bias``."""
    with warnings.catch_warnings():  # shrinking may leave zero-sized weights
        warnings.filterwarnings("ignore", "Initializing zero-element tensors")
        layer = nn.utils.skip_init(  # no random initialisation: the values are copied in
            nn.Linear, weight.shape[1], weight.shape[0], bias=bias is not None, device=weight.device, dtype=weight.dtype
        )
    layer.weight.data.copy_(weight)
    if bias is not None:
        layer.bias.data.copy_(bias)
    return layer


@torch.no_grad()
def fold_masks(model: nn.Module) -> nn.Module:
    """Replace each masked layer by a Linear with its evaluation-mode masked (and adapted) weight.

    The model must carry the threshold its masks were trained to (``apply_threshold``); after the
    call it is a standard Hugging Face model with the masked blocks stored as zeros.
    """
    for name, layer in masked_layers(model):
        was_training = layer.training
        layer.eval()
        weight = layer.masked_weight()
        layer.train(was_training)
        replace_module(model, name, plain_linear(weight, layer.bias))
    return model.requires_grad_(False).eval()
