"""BERT for question answering whose layers keep different numbers of attention heads and neurons.

Written into every folder `spa-tune export` saves when heads or feed-forward neurons were removed.
It depends on torch and transformers only, so the folder loads anywhere with
``AutoModelForQuestionAnswering.from_pretrained(folder, trust_remote_code=True)``.
``layer_heads[i]`` heads of the original head size and ``layer_intermediate_sizes[i]`` neurons
remain in layer ``i``; a layer without heads adds only its attention-output bias.
"""

from __future__ import annotations

import warnings

from torch import nn
from transformers import BertConfig, BertForQuestionAnswering


class PrunedBertConfig(BertConfig):
    """``BertConfig`` plus the heads and feed-forward width that remain in each layer."""

    model_type = "pruned_bert"

    def __init__(self, layer_heads=None, layer_intermediate_sizes=None, **kwargs):
        super().__init__(**kwargs)
        layers = self.num_hidden_layers
        self.layer_heads = list(layer_heads) if layer_heads is not None else [self.num_attention_heads] * layers
        self.layer_intermediate_sizes = (
            list(layer_intermediate_sizes) if layer_intermediate_sizes is not None else [self.intermediate_size] * layers
        )


class NoHeads(nn.Module):
    """Self-attention of a layer whose heads were all removed: an empty context."""

    def forward(self, hidden_states, *args, **kwargs):
        """A context of width 0 for every token, and no attention weights."""
        return hidden_states.new_zeros(*hidden_states.shape[:-1], 0), None


class PrunedBertForQuestionAnswering(BertForQuestionAnswering):
    """``BertForQuestionAnswering`` with the per-layer sizes of a ``PrunedBertConfig``."""

    config_class = PrunedBertConfig

    def __init__(self, config: PrunedBertConfig):
        super().__init__(config)
        head_size = config.hidden_size // config.num_attention_heads
        hidden = config.hidden_size
        for layer, heads, width in zip(self.bert.encoder.layer, config.layer_heads, config.layer_intermediate_sizes):
            attention = layer.attention
            attention.self.num_attention_heads = heads  # read by older transformers' reshapes
            attention.self.all_head_size = heads * head_size
            if heads == 0:
                attention.self = NoHeads()
            else:
                for name in ("query", "key", "value"):
                    setattr(attention.self, name, _linear(hidden, heads * head_size))
            attention.output.dense = _linear(heads * head_size, hidden)
            layer.intermediate.dense = _linear(hidden, width)
            layer.output.dense = _linear(width, hidden)
        self.post_init()  # initialises the new layers as transformers does; from_pretrained then loads them


def _linear(in_features: int, out_features: int) -> nn.Linear:
    with warnings.catch_warnings():  # a layer may keep no head or no neuron: a zero-sized weight
        warnings.filterwarnings("ignore", "Initializing zero-element tensors")
        return nn.utils.skip_init(nn.Linear, in_features, out_features)
