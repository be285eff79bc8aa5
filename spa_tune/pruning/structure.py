"""Masks on removable structure: whole attention heads and whole feed-forward neurons.

With ``mask_structure: heads_neurons`` a "block" is what an exported model can drop: one head of
query, key and value (``head_dim`` rows), the same head's columns of the attention output, one
row of the intermediate layer and the same neuron's column of the output layer. The four matrices
of a layer's attention share one score per head, the two feed-forward matrices one score per
neuron, so a head or neuron is kept or pruned as a whole. (With ``l0`` each matrix draws its own
gate noise while training; the evaluation masks, which an export uses, are tied exactly.)
"""

from __future__ import annotations

import re
from dataclasses import replace

from torch import nn

from .masked_linear import BlockMaskedLinear, MaskSpec

STRUCTURES = ("blocks", "heads_neurons")
# Role of each encoder Linear, by its name below ``layer.<i>.``
ROLES = {
    "attention.self.query": "qkv",
    "attention.self.key": "qkv",
    "attention.self.value": "qkv",
    "attention.output.dense": "attention_out",
    "intermediate.dense": "ffn_in",
    "output.dense": "ffn_out",
}
GROUPS = {"qkv": "attention", "attention_out": "attention", "ffn_in": "ffn", "ffn_out": "ffn"}


def layer_role(name: str) -> tuple[int, str]:
    """``(layer index, role)`` of an encoder Linear's qualified name (role ``qkv``, ``ffn_in``, ...)."""
    match = re.search(r"layer\.(\d+)\.(.+)$", name)
    role = ROLES.get(match.group(2)) if match else None
    if role is None:
        raise ValueError(f"{name} is not a BERT encoder matrix with a known role")
    return int(match.group(1)), role


def structure_block(role: str, out_features: int, in_features: int, head_dim: int) -> tuple[int, int]:
    """Block shape of one head (attention) or one neuron (feed-forward) in a matrix of ``role``."""
    return {
        "qkv": (head_dim, in_features),
        "attention_out": (out_features, head_dim),
        "ffn_in": (1, in_features),
        "ffn_out": (out_features, 1),
    }[role]


def structured_layers(named_linears: list[tuple[str, nn.Linear]], spec: MaskSpec, head_dim: int) -> dict[str, BlockMaskedLinear]:
    """Masked layers for every encoder Linear, scores tied per layer's heads and per layer's neurons."""
    layers: dict[str, BlockMaskedLinear] = {}
    shared: dict[tuple[int, str], nn.Parameter] = {}
    for name, linear in named_linears:
        index, role = layer_role(name)
        rows, cols = structure_block(role, *linear.weight.shape, head_dim)
        layer = BlockMaskedLinear(linear, replace(spec, block_rows=rows, block_cols=cols))
        key = (index, GROUPS[role])
        if key in shared:
            layer.mask_scores = shared[key]  # one score per head / neuron for all its matrices
        else:
            shared[key] = layer.mask_scores
        layers[name] = layer
    return layers
