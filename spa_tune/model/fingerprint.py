"""Fingerprints of weights a trained artefact depends on but does not store (a frozen base model)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import torch
from torch import nn


def weights_fingerprint(state: dict[str, torch.Tensor], keys: Iterable[str]) -> str:
    """SHA-256 over the names and values of ``state[key]`` for ``keys``, in sorted order."""
    digest = hashlib.sha256()
    for key in sorted(keys):
        digest.update(key.encode())
        digest.update(state[key].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def frozen_parameter_names(model: nn.Module) -> list[str]:
    """Names of the parameters that do not learn (``requires_grad`` off): the frozen base."""
    return sorted(name for name, param in model.named_parameters() if not param.requires_grad)
