"""AdamW parameter groups of seed-notes "Optimisation" and the linear warm-up/decay schedule."""

from __future__ import annotations

import torch
from torch import nn
from transformers import get_linear_schedule_with_warmup

NO_DECAY = ("bias", "LayerNorm.weight", "LayerNorm.bias", "layer_norm.weight", "layer_norm.bias")


def parameter_groups(model: nn.Module, cfg) -> list[dict]:
    """Trainable parameters split into mask scores, SPLoPA position weights, and the rest.

    Mask scores learn at ``mask_scores_learning_rate``, position weights at
    ``adapter_learning_rate``, everything else at ``learning_rate``; biases and LayerNorm weights
    are not decayed.
    """
    scores, positions, decay, no_decay = [], [], [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.endswith("mask_scores"):
            scores.append(param)
        elif name.endswith("position_weights"):
            positions.append(param)
        elif any(name.endswith(suffix) for suffix in NO_DECAY):
            no_decay.append(param)
        else:
            decay.append(param)
    groups = [
        {"name": "mask_scores", "params": scores, "lr": cfg.mask_scores_learning_rate, "weight_decay": 0.0},
        {"name": "position_weights", "params": positions, "lr": cfg.adapter_learning_rate, "weight_decay": 0.0},
        {"name": "decay", "params": decay, "lr": cfg.learning_rate, "weight_decay": cfg.weight_decay},
        {"name": "no_decay", "params": no_decay, "lr": cfg.learning_rate, "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def build_optimizer(model: nn.Module, cfg, total_steps: int):
    """AdamW over ``parameter_groups`` and a linear warm-up then linear decay to zero."""
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg), eps=cfg.adam_epsilon)
    scheduler = get_linear_schedule_with_warmup(optimizer, cfg.warmup_steps, total_steps)
    return optimizer, scheduler
