import pytest
import torch

from spa_tune.adapters.splopa import SplopaLinear, SplopaPrototypes
from spa_tune.adapters.splopa.layer import block_update
from spa_tune.config import validate_trial_config
from spa_tune.model.inject import prepare_model
from spa_tune.pruning.masked_linear import MaskSpec
from tests.conftest import tiny_bert


def literal_update(position_weights, prototypes):
    """sum_k kron(A_k, P_k), straight from the definition."""
    return sum(torch.kron(position_weights[k], prototypes[k]) for k in range(position_weights.shape[0]))


def test_fast_update_equals_sum_of_kronecker_products():
    torch.manual_seed(1)
    protos = SplopaPrototypes(num_prototypes=5, rank=2, block_rows=3, block_cols=4, init_range=0.5)
    position = torch.randn(5, 4, 2)  # weight 12 x 8
    fast = block_update(position, protos.flat(), 3, 4)
    slow = literal_update(position, protos.dense())
    assert fast.shape == (12, 8)
    assert torch.allclose(fast, slow, atol=1e-6)


def test_pruned_block_contributes_neither_base_nor_update():
    torch.manual_seed(2)
    protos = SplopaPrototypes(4, 1, 2, 2, init_range=1.0)
    layer = SplopaLinear(torch.nn.Linear(4, 4), MaskSpec("topK", block_rows=2, block_cols=2), protos)
    with torch.no_grad():
        layer.mask_scores.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    layer.threshold = 0.5  # blocks (0, 1) and (1, 0) pruned
    x = torch.randn(3, 4)
    before = layer(x)
    with torch.no_grad():
        layer.weight[0:2, 2:4] += 100.0
        layer.position_weights[:, 0, 1] += 100.0
        layer.position_weights[:, 1, 0] -= 50.0
    assert torch.allclose(layer(x), before)
    weight = layer.masked_weight()
    assert weight[0:2, 2:4].eq(0).all() and weight[2:4, 0:2].eq(0).all()
    with torch.no_grad():
        layer.position_weights[:, 0, 0] += 1.0  # a kept block does change the output
    assert not torch.allclose(layer(x), before)


@pytest.mark.parametrize("layernorm", [True, False])
def test_only_adapter_bias_scores_layernorms_and_head_train(layernorm):
    cfg = validate_trial_config(
        dict(method="splopa", pruning_method="sigmoied_threshold", mask_block_rows=32, mask_block_cols=32,
             num_splopa_prototypes=4, splopa_prototype_rank=2, splopa_train_layernorm=layernorm)
    )
    model = prepare_model(tiny_bert(), cfg)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for name in trainable:
        assert (
            name.endswith(("position_weights", "mask_scores", "prototypes.left", "prototypes.right"))
            or (name.startswith("bert.encoder") and name.endswith(".bias") and "LayerNorm" not in name)
            or (layernorm and name.startswith("bert.encoder") and ".LayerNorm." in name)
            or name.startswith("qa_outputs")
        ), name
    assert "bert.encoder.layer.0.attention.self.query.weight" not in trainable
    assert "qa_outputs.weight" in trainable
    assert "bert.encoder.layer.1.output.dense.position_weights" in trainable
    assert not any("embeddings" in n for n in trainable)  # the embeddings' LayerNorm stays frozen too
    encoder_norms = {n for n, _ in model.named_parameters() if n.startswith("bert.encoder") and ".LayerNorm." in n}
    assert len(encoder_norms) == 2 * 2 * 2  # 2 layers x (attention, output) x (weight, bias)
    assert (encoder_norms <= trainable) if layernorm else not (encoder_norms & trainable)
    # a training step changes only trainable tensors
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    ids = torch.randint(1000, 2000, (2, 16))
    out = model(input_ids=ids, start_positions=torch.tensor([1, 2]), end_positions=torch.tensor([3, 4]))
    out.loss.backward()
    opt.step()
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)


def test_shared_prototypes_only_within_one_model():
    cfg = validate_trial_config(dict(method="splopa", num_splopa_prototypes=4, shared_prototypes=True))
    first, second = prepare_model(tiny_bert(), cfg), prepare_model(tiny_bert(), cfg)

    def protos(model):
        return {name: m.prototypes for name, m in model.named_modules() if isinstance(m, SplopaLinear)}

    a, b = protos(first), protos(second)
    q, k = "bert.encoder.layer.0.attention.self.query", "bert.encoder.layer.1.attention.self.key"
    inter, out = "bert.encoder.layer.0.intermediate.dense", "bert.encoder.layer.0.output.dense"
    assert a[q] is a[k]  # same 64x64 shape, same model
    assert a[q] is not a[inter] and a[inter] is not a[out]  # 128x64 vs 64x128
    assert not {id(p) for p in a.values()} & {id(p) for p in b.values()}
    unshared = prepare_model(tiny_bert(), validate_trial_config(dict(method="splopa", num_splopa_prototypes=4)))
    assert len({id(p) for p in protos(unshared).values()}) == 12
