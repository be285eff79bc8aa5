import math

import pytest
import torch

from spa_tune.pruning import binarizers as b
from spa_tune.pruning.control import global_keep_masks
from spa_tune.pruning.masked_linear import BlockMaskedLinear, MaskSpec


def distinct_scores(rows, cols, seed=0):
    torch.manual_seed(seed)
    return torch.randperm(rows * cols).float().reshape(rows, cols).requires_grad_(True)


@pytest.mark.parametrize("fraction,expected", [(0.25, 8), (0.5, 16), (0.1, 3), (1.0, 32), (0.0, 0), (0.3, 9)])
def test_topk_keeps_exact_fraction_of_top_blocks(fraction, expected):
    scores = distinct_scores(8, 4)
    mask = b.topk_mask(scores, fraction)
    assert int(mask.sum()) == expected
    kept = scores.detach()[mask.bool()]
    dropped = scores.detach()[~mask.bool()]
    if expected and expected < 32:
        assert kept.min() > dropped.max()


def test_kept_count_is_robust_to_float_error():
    assert b.kept_count(100, 0.29) == 29  # 0.29 * 100 == 28.999999999999996
    assert b.kept_count(576, 0.1) == 57


def test_topk_straight_through_gradient():
    scores = distinct_scores(4, 4)
    mask = b.topk_mask(scores, 0.5)
    upstream = torch.arange(16.0).reshape(4, 4)
    (mask * upstream).sum().backward()
    assert torch.equal(scores.grad, upstream)


def test_magnitude_ranks_by_block_mean_absolute_weight():
    weight = torch.zeros(4, 6)
    weight[0:2, 0:3] = -5.0  # block (0, 0): mean |w| 5
    weight[2:4, 3:6] = 2.0  # block (1, 1): mean |w| 2
    weight[0, 3] = 9.0  # block (0, 1): mean |w| 1.5
    mags = b.block_magnitudes(weight, 2, 3)
    assert torch.allclose(mags, torch.tensor([[5.0, 1.5], [0.0, 2.0]]))
    mask = b.magnitude_mask(weight, 0.5, 2, 3)
    assert mask.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_threshold_keeps_scores_above_threshold_with_straight_through():
    scores = torch.tensor([[-1.0, 0.2, 0.6], [0.9, 0.4, -0.3]], requires_grad=True)
    mask = b.threshold_mask(scores, 0.3)
    assert mask.tolist() == [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    mask.sum().backward()
    assert torch.equal(scores.grad, torch.ones(2, 3))


def test_sigmoied_threshold_uses_sigmoid_of_scores():
    scores = torch.tensor([[math.log(0.2 / 0.8), math.log(0.6 / 0.4)]])  # sigmoid: 0.2, 0.6
    assert b.threshold_mask(scores, 0.5, sigmoid=True).tolist() == [[0.0, 1.0]]
    assert b.threshold_mask(scores, 0.1, sigmoid=True).tolist() == [[1.0, 1.0]]


def test_threshold_keeps_at_least_half_a_percent_of_blocks():
    scores = distinct_scores(20, 30)  # 600 blocks -> at least 3 kept
    mask = b.threshold_mask(scores, 1e9)
    assert int(mask.sum()) == 3
    assert set(scores.detach()[mask.bool()].tolist()) == {599.0, 598.0, 597.0}


def test_l0_eval_mask_is_stretched_clamped_sigmoid():
    scores = torch.tensor([[-10.0, 0.0, 10.0, 1.0]])
    mask = b.l0_mask(scores, training=False)
    expected = torch.clamp(torch.sigmoid(scores) * 1.2 - 0.1, 0, 1)
    assert torch.allclose(mask, expected)
    assert mask[0, 0] == 0.0 and mask[0, 2] == 1.0 and abs(mask[0, 1].item() - 0.5) < 1e-6


def test_l0_training_mask_is_hard_concrete_sample():
    scores = torch.zeros(1, 1000)
    torch.manual_seed(3)
    mask = b.l0_mask(scores, training=True)
    torch.manual_seed(3)
    u = torch.empty(1, 1000).uniform_(1e-4, 1 - 1e-4)
    s = torch.sigmoid((torch.log(u) - torch.log(1 - u)) / (2 / 3))
    assert torch.allclose(mask, torch.clamp(s * 1.2 - 0.1, 0, 1))
    assert (mask == 0).any() and (mask == 1).any()


def test_block_mask_applies_each_entry_over_its_block():
    mask = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    full = b.apply_block_mask(torch.ones(4, 6), mask, 2, 3)
    assert full.shape == (4, 6)
    assert full[:2, :3].eq(1).all() and full[:2, 3:].eq(0).all() and full[2:, 3:].eq(1).all()


def test_global_ranking_keeps_fraction_across_layers():
    spec = MaskSpec("topK", block_rows=2, block_cols=2)
    a = BlockMaskedLinear(torch.nn.Linear(4, 4), spec)  # 4 blocks
    c = BlockMaskedLinear(torch.nn.Linear(8, 4), spec)  # 8 blocks
    with torch.no_grad():
        a.mask_scores.copy_(torch.tensor([[10.0, 11.0], [12.0, 13.0]]))
        c.mask_scores.copy_(torch.arange(8.0).reshape(2, 4))
    keeps = global_keep_masks([a, c], 0.5)  # 6 of 12 blocks: all 4 of a, the top 2 of c
    assert int(keeps[0].sum()) == 4
    assert keeps[1].reshape(-1).tolist() == [False] * 6 + [True] * 2
