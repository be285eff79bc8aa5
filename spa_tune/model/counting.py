"""Weight accounting of seed-notes "Counting": remaining encoder weights and learned parameters.

- Encoder weights: every parameter of the dense encoder (weights, biases, LayerNorm).
- Remaining: weights whose mask entry is non-zero, plus the encoder parameters that are not masked.
- Learned (SPLoPA): prototypes (once where shared) plus the position weights of surviving blocks;
  per layer, shared prototypes count towards the first layer that uses them.
  Learned (fine-pruning): the remaining weights. Learned (dense): all encoder weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from ..adapters.splopa import SplopaLinear
from ..pruning.control import eval_block_masks, masked_layers
from .inject import encoder_linears, encoder_of


@dataclass
class LayerCount:
    """Counts of one masked layer."""

    weights: int
    remaining: int
    learned: int

    @property
    def remaining_pct(self) -> float:
        """Remaining share of the layer's weight, in percent."""
        return 100.0 * self.remaining / self.weights

    @property
    def learned_pct(self) -> float:
        """Learned parameters in percent of the layer's weight."""
        return 100.0 * self.learned / self.weights


@dataclass
class Accounting:
    """Totals over the encoder and the per-layer breakdown."""

    encoder_params: int
    remaining_params: int
    learned_params: int
    layers: dict[str, LayerCount] = field(default_factory=dict)

    @property
    def remaining_pct(self) -> float:
        """Remaining encoder weights in percent of all encoder weights."""
        return 100.0 * self.remaining_params / self.encoder_params

    @property
    def learned_pct(self) -> float:
        """Learned parameters in percent of all encoder weights."""
        return 100.0 * self.learned_params / self.encoder_params

    def as_metrics(self) -> dict:
        """Flat metrics plus a ``layers`` mapping of per-layer figures."""
        return {
            "encoder_params": self.encoder_params,
            "remaining_params": self.remaining_params,
            "remaining_pct": self.remaining_pct,
            "learned_params": self.learned_params,
            "learned_pct": self.learned_pct,
            "layers": {
                name: {"remaining_pct": c.remaining_pct, "learned_params": c.learned, "learned_pct": c.learned_pct}
                for name, c in self.layers.items()
            },
        }


def is_added_parameter(name: str) -> bool:
    """Whether a parameter name belongs to a mask or an adapter rather than to the dense model."""
    return name.rsplit(".", 1)[-1] in {"mask_scores", "position_weights"} or ".prototypes." in f".{name}"


def encoder_weight_count(model: nn.Module) -> int:
    """Number of encoder parameters of the dense model (masks and adapters excluded)."""
    return sum(p.numel() for n, p in encoder_of(model).named_parameters() if not is_added_parameter(n))


def count_weights(model: nn.Module, method: str) -> Accounting:
    """Remaining and learned counts of ``model`` for a trial ``method``, with evaluation-mode masks."""
    total = encoder_weight_count(model)
    layers = dict(masked_layers(model))
    masks = eval_block_masks(model)
    per_layer: dict[str, LayerCount] = {}
    prototypes_seen: set[int] = set()
    for name, layer in layers.items():
        kept_blocks = int((masks[name] > 0).sum())
        block_size = layer.spec.block_rows * layer.spec.block_cols
        remaining = kept_blocks * block_size
        learned = remaining
        if isinstance(layer, SplopaLinear):
            learned = kept_blocks * layer.prototypes.num_prototypes
            if id(layer.prototypes) not in prototypes_seen:
                prototypes_seen.add(id(layer.prototypes))
                own = sum(p.numel() for p in layer.prototypes.parameters())
                learned += own
        per_layer[name] = LayerCount(weights=layer.weight.numel(), remaining=remaining, learned=learned)
    masked_total = sum(c.weights for c in per_layer.values())
    remaining_total = sum(c.remaining for c in per_layer.values()) + (total - masked_total)
    if method == "splopa":
        learned_total = sum(c.learned for c in per_layer.values())
    elif method == "fine-pruning":
        learned_total = remaining_total
    else:
        learned_total = total
    return Accounting(total, remaining_total, learned_total, per_layer)


def encoder_shape_counts(model_dir: str) -> tuple[int, int]:
    """``(encoder parameters, encoder Linear weights)`` of a local model folder, from its config alone.

    The model is built on the meta device, so no weights are read or allocated: cheap enough to
    check a target density on the driver before any trial starts.
    """
    import torch
    from transformers import AutoConfig, AutoModelForQuestionAnswering

    config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    with torch.device("meta"):
        model = AutoModelForQuestionAnswering.from_config(config)
    return encoder_weight_count(model), sum(linear.weight.numel() for _, linear in encoder_linears(model))
