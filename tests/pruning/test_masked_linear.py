import pytest
import torch
import torch.nn.functional as F

from spa_tune.pruning.control import apply_threshold
from spa_tune.pruning.masked_linear import BlockMaskedLinear, MaskSpec


def test_forward_equals_linear_with_block_mask_and_shares_parameters():
    torch.manual_seed(0)
    linear = torch.nn.Linear(6, 4)
    layer = BlockMaskedLinear(linear, MaskSpec("topK", block_rows=2, block_cols=3))
    assert layer.weight is linear.weight and layer.bias is linear.bias
    with torch.no_grad():
        layer.mask_scores.copy_(torch.tensor([[3.0, 1.0], [0.0, 2.0]]))
    layer.threshold = 0.5  # keep the 2 best of 4 blocks: (0, 0) and (1, 1)
    mask = torch.zeros(4, 6)
    mask[0:2, 0:3] = 1
    mask[2:4, 3:6] = 1
    x = torch.randn(5, 6)
    assert torch.allclose(layer(x), F.linear(x, linear.weight * mask, linear.bias))


def test_scores_receive_block_summed_gradient():
    torch.manual_seed(0)
    layer = BlockMaskedLinear(torch.nn.Linear(4, 4), MaskSpec("topK", block_rows=2, block_cols=2))
    layer.threshold = 1.0
    x = torch.randn(3, 4)
    layer(x).sum().backward()
    grad_mask_full = torch.ones(3, 4).t() @ x  # d(sum)/d(W*M) = 1^T x, times W for M
    expected = (grad_mask_full * layer.weight.detach()).reshape(2, 2, 2, 2).sum(dim=(1, 3))
    assert torch.allclose(layer.mask_scores.grad, expected, atol=1e-6)


def test_block_shape_must_divide_weight():
    with pytest.raises(ValueError, match="does not divide"):
        BlockMaskedLinear(torch.nn.Linear(6, 4), MaskSpec("topK", block_rows=3, block_cols=3))


@pytest.mark.parametrize("init,scale", [("constant", 0.7), ("uniform", 0.1), ("kaiming", 0.0)])
def test_mask_init(init, scale):
    layer = BlockMaskedLinear(torch.nn.Linear(64, 64), MaskSpec("topK", init, scale, 8, 8))
    s = layer.mask_scores.detach()
    if init == "constant":
        assert torch.all(s == 0.7)
    elif init == "uniform":
        assert s.abs().max() <= 0.1 and s.std() > 0
    else:  # Kaiming-uniform with a = sqrt(5): bound 1 / sqrt(fan_in), fan_in = 8 block columns
        assert s.abs().max() <= 1 / 8**0.5 and s.std() > 0.1


def test_magnitude_layer_has_no_scores_and_global_ranking_applies():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        BlockMaskedLinear(torch.nn.Linear(4, 4), MaskSpec("magnitude", block_rows=2, block_cols=2)),
        BlockMaskedLinear(torch.nn.Linear(4, 4), MaskSpec("magnitude", block_rows=2, block_cols=2)),
    )
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[1].weight.fill_(0.01)
    assert model[0].mask_scores is None
    apply_threshold(model, 0.5, global_ranking=True)
    assert int(model[0].block_mask().sum()) == 4 and int(model[1].block_mask().sum()) == 0
    apply_threshold(model, 0.5, global_ranking=False)
    assert int(model[0].block_mask().sum()) == 2 and int(model[1].block_mask().sum()) == 2
