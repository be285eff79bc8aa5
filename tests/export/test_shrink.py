"""Removing dead heads and neurons keeps the function: exact on hand-made zero patterns."""

from __future__ import annotations

import copy

import pytest
import torch

from spa_tune.export.pruned_bert import NoHeads, PrunedBertForQuestionAnswering
from spa_tune.export.shrink import shrink_model
from tests.conftest import tiny_bert


def logits(model, ids, mask):
    with torch.no_grad():
        out = model.eval()(input_ids=ids, attention_mask=mask)
    return torch.cat([out.start_logits, out.end_logits])


@pytest.fixture
def inputs():
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1000, 5000, (3, 24), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 17:] = 0  # padding: attention weights still sum to one over the real tokens
    return ids, mask


@torch.no_grad()
def test_dead_heads_and_neurons_are_removed_and_constants_folded(inputs):
    model = tiny_bert(seed=3).eval()
    for param in model.parameters():  # non-zero biases everywhere, so the folded constants matter
        param.add_(0.05)
    first, second = model.bert.encoder.layer
    first.attention.self.value.weight[:32] = 0  # head 0: constant value -> folded into the output bias
    second.attention.output.dense.weight[:, 32:] = 0  # head 1: never read
    second.attention.self.value.weight[:32] = 0  # head 0 too: no head left in layer 1
    first.intermediate.dense.weight[:100] = 0  # constant neurons -> folded
    second.output.dense.weight[:, 50:] = 0  # neurons never read
    first.attention.self.query.weight[32:] = 0  # zero query rows alone do not make a head removable
    reference = logits(model, *inputs)

    small, layout = shrink_model(copy.deepcopy(model))

    assert isinstance(small, PrunedBertForQuestionAnswering)
    assert layout.heads == [1, 0] and layout.neurons == [28, 50]
    assert isinstance(small.bert.encoder.layer[1].attention.self, NoHeads)
    assert small.bert.encoder.layer[0].attention.self.query.weight.shape == (32, 64)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())
    torch.testing.assert_close(logits(small, *inputs), reference, rtol=0, atol=1e-5)


def test_without_removable_structure_the_model_stays_standard_bert(inputs):
    model = tiny_bert(seed=4).eval()
    reference = logits(model, *inputs)
    same, layout = shrink_model(copy.deepcopy(model))
    assert type(same).__name__ == "BertForQuestionAnswering"
    assert not layout.removed_anything
    torch.testing.assert_close(logits(same, *inputs), reference, rtol=0, atol=0)
