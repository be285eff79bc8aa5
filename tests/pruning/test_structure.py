"""``mask_structure: heads_neurons``: one score per head and per neuron, tied across its matrices."""

from __future__ import annotations

import pytest
import torch

from spa_tune.config import TrialConfig, validate_trial_config
from spa_tune.errors import SpaTuneError
from spa_tune.model.counting import count_weights
from spa_tune.model.inject import prepare_model
from spa_tune.pruning.control import all_mask_scores, apply_threshold, eval_block_masks, masked_layers
from spa_tune.pruning.structure import layer_role
from tests.conftest import tiny_bert


def structured_model(**values):
    cfg = TrialConfig(mask_structure="heads_neurons", mask_init="uniform", mask_scale=1.0, **values)
    torch.manual_seed(0)
    return prepare_model(tiny_bert(), cfg)


def test_heads_and_neurons_are_kept_or_pruned_in_all_their_matrices():
    model = structured_model()
    apply_threshold(model, 0.5)
    masks = eval_block_masks(model)
    for index in range(2):
        prefix = f"bert.encoder.layer.{index}."
        query = masks[prefix + "attention.self.query"]
        assert query.shape == (2, 1) and int(query.sum()) == 1  # one of two heads
        for name in ("attention.self.key", "attention.self.value"):
            assert torch.equal(masks[prefix + name], query)
        assert torch.equal(masks[prefix + "attention.output.dense"], query.t())
        inner = masks[prefix + "intermediate.dense"]
        assert inner.shape == (128, 1) and int(inner.sum()) == 64
        assert torch.equal(masks[prefix + "output.dense"], inner.t())


def test_tied_scores_are_one_parameter_and_learn_from_every_matrix():
    model = structured_model()
    layers = dict(masked_layers(model))
    query = layers["bert.encoder.layer.0.attention.self.query"]
    out = layers["bert.encoder.layer.0.attention.output.dense"]
    assert query.mask_scores is out.mask_scores
    assert len(all_mask_scores(model)) == 4  # attention and feed-forward of two layers
    apply_threshold(model, 0.5)
    ids = torch.randint(1000, 5000, (2, 12))
    model(input_ids=ids).start_logits.sum().backward()
    kept = query.block_mask().detach().reshape(-1) > 0
    assert bool((query.mask_scores.grad.reshape(-1)[kept] != 0).all())


def test_counting_takes_whole_heads_and_neurons():
    model = structured_model()
    apply_threshold(model, 0.5)
    counts = count_weights(model, "fine-pruning")
    layer = counts.layers["bert.encoder.layer.0.attention.self.query"]
    assert layer.remaining == 32 * 64  # one head of 32 rows
    ffn = counts.layers["bert.encoder.layer.0.output.dense"]
    assert ffn.remaining == 64 * 64  # 64 neuron columns of 64 rows


def test_roles_of_bert_matrices():
    assert layer_role("bert.encoder.layer.3.attention.output.dense") == (3, "attention_out")
    assert layer_role("bert.encoder.layer.11.output.dense") == (11, "ffn_out")
    with pytest.raises(ValueError):
        layer_role("bert.pooler.dense")


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"method": "splopa"}, "heads_neurons is for fine-pruning"),
        ({"pruning_method": "magnitude"}, "needs learned scores"),
        ({"global_topk": True}, "needs learned scores"),
        ({"mask_structure": "rows"}, "mask_structure"),
    ],
)
def test_invalid_structure_combinations_are_named(values, fragment):
    with pytest.raises(SpaTuneError, match=fragment):
        validate_trial_config({"mask_structure": "heads_neurons", **values}, "trial.yaml")
