"""Remove what a pruned BERT no longer uses: attention heads and feed-forward neurons.

Works on a plain ``BertForQuestionAnswering`` whose encoder weights already carry their masks.
A head adds nothing that depends on its input once its value rows are zero (every position then
gets the value bias, and attention weights sum to one) or once its columns of the attention
output are zero; a neuron once its intermediate row or its output column is zero. What such a
head or neuron still adds is a constant, which is folded into the output bias before the head or
neuron is sliced away, so the smaller model computes the same function.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import BertForQuestionAnswering
from transformers.activations import ACT2FN

from .fold import plain_linear
from .pruned_bert import NoHeads, PrunedBertConfig, PrunedBertForQuestionAnswering


@dataclass
class Layout:
    """Heads and feed-forward neurons kept in each layer, and how many each layer had."""

    heads: list[int]
    neurons: list[int]
    total_heads: int
    total_neurons: int

    @property
    def removed_anything(self) -> bool:
        """Whether any head or neuron was removed."""
        return any(h < self.total_heads for h in self.heads) or any(n < self.total_neurons for n in self.neurons)

    def describe(self) -> str:
        """One line: heads and neurons kept per layer."""
        heads = sum(self.heads), self.total_heads * len(self.heads)
        neurons = sum(self.neurons), self.total_neurons * len(self.neurons)
        return (
            f"heads kept {heads[0]}/{heads[1]} (per layer {self.heads}), "
            f"feed-forward neurons kept {neurons[0]}/{neurons[1]} (per layer {self.neurons})"
        )


def _zero_rows(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """For ``groups`` equal bands of rows: whether the band is all zero."""
    return (weight.reshape(groups, -1) == 0).all(dim=1)


@torch.no_grad()
def shrink_attention(attention: nn.Module, num_heads: int) -> int:
    """Drop the unused heads of one ``BertAttention`` in place; the number of heads kept."""
    qkv, out = attention.self, attention.output.dense
    value_gone = _zero_rows(qkv.value.weight, num_heads)
    out_gone = _zero_rows(out.weight.t().contiguous(), num_heads)
    head_size = qkv.value.weight.shape[0] // num_heads
    bias = out.bias.clone()
    for head in torch.nonzero(value_gone & ~out_gone).flatten().tolist():
        cols = slice(head * head_size, (head + 1) * head_size)
        bias += out.weight[:, cols] @ qkv.value.bias[cols]  # the head's constant output
    keep = ~(value_gone | out_gone)
    rows = keep.repeat_interleave(head_size)
    if int(keep.sum()) == 0:
        attention.self = NoHeads()
    else:
        for name in ("query", "key", "value"):
            linear = getattr(qkv, name)
            setattr(qkv, name, plain_linear(linear.weight[rows], linear.bias[rows]))
    attention.output.dense = plain_linear(out.weight[:, rows], bias)
    return int(keep.sum())


@torch.no_grad()
def shrink_feed_forward(layer: nn.Module, activation: str) -> int:
    """Drop the unused neurons of one ``BertLayer``'s feed-forward part in place; the number kept."""
    inner, outer = layer.intermediate.dense, layer.output.dense
    in_gone = (inner.weight == 0).all(dim=1)
    out_gone = (outer.weight == 0).all(dim=0)
    constant = in_gone & ~out_gone
    bias = outer.bias.clone()
    if constant.any():  # such a neuron always outputs act(bias)
        bias += outer.weight[:, constant] @ ACT2FN[activation](inner.bias[constant])
    keep = ~(in_gone | out_gone)
    layer.intermediate.dense = plain_linear(inner.weight[keep], inner.bias[keep])
    layer.output.dense = plain_linear(outer.weight[:, keep], bias)
    return int(keep.sum())


def shrink_model(model: nn.Module) -> tuple[nn.Module, Layout]:
    """A ``PrunedBertForQuestionAnswering`` holding only what ``model`` uses, and its layout.

    ``model`` (a plain BERT QA model with masked weights) is changed in place. When nothing can be
    removed it is returned as it is (a standard BERT model).
    """
    config = model.config
    if type(model) is not BertForQuestionAnswering:  # other encoders are saved folded, at full size
        layers = config.num_hidden_layers
        full = Layout([config.num_attention_heads] * layers, [config.intermediate_size] * layers,
                      config.num_attention_heads, config.intermediate_size)
        return model, full
    if not isinstance(activation := config.hidden_act, str):
        raise ValueError("only models with a named activation function can be shrunk")
    heads, neurons = [], []
    for layer in model.base_model.encoder.layer:
        heads.append(shrink_attention(layer.attention, config.num_attention_heads))
        neurons.append(shrink_feed_forward(layer, activation))
    layout = Layout(heads, neurons, config.num_attention_heads, config.intermediate_size)
    if not layout.removed_anything:
        return model, layout
    values = {k: v for k, v in config.to_dict().items() if k not in ("architectures", "model_type", "auto_map")}
    pruned = PrunedBertForQuestionAnswering(PrunedBertConfig(layer_heads=heads, layer_intermediate_sizes=neurons, **values))
    pruned.load_state_dict(model.state_dict(), strict=True)
    return pruned.eval(), layout
