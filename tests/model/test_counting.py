import pytest

from spa_tune.config import validate_trial_config
from spa_tune.model.counting import count_weights, encoder_weight_count
from spa_tune.model.inject import prepare_model
from spa_tune.pruning.control import apply_threshold
from tests.conftest import tiny_bert

# Tiny BERT: hidden 64, intermediate 128, 2 layers. Per layer: q, k, v, attention output
# 4 * (64*64 + 64) = 16640; intermediate 128*64 + 128 = 8320; output 64*128 + 64 = 8256;
# two LayerNorms 2 * 128 = 256. Total 33472 per layer, 66944 for the encoder.
ENCODER = 66944
MASKED_PER_LAYER = 4 * 4096 + 8192 + 8192  # 32768 weights in 32 blocks of 32x32
UNMASKED = ENCODER - 2 * MASKED_PER_LAYER  # biases and LayerNorms: 1408


def test_encoder_count_of_dense_model():
    assert encoder_weight_count(tiny_bert()) == ENCODER
    acc = count_weights(tiny_bert(), "dense")
    assert acc.remaining_params == ENCODER and acc.learned_params == ENCODER and acc.learned_pct == 100.0


def test_fine_pruning_half_of_the_blocks():
    cfg = validate_trial_config(dict(method="fine-pruning", pruning_method="topK", mask_init="kaiming"))
    model = prepare_model(tiny_bert(), cfg)
    assert encoder_weight_count(model) == ENCODER  # scores are not encoder weights
    apply_threshold(model, 0.5)
    acc = count_weights(model, "fine-pruning")
    remaining = 2 * 16 * 1024 + UNMASKED  # 16 of 32 blocks per layer
    assert acc.remaining_params == remaining == 34176
    assert acc.remaining_pct == pytest.approx(100 * 34176 / 66944)
    assert acc.learned_params == remaining
    q = acc.layers["bert.encoder.layer.0.attention.self.query"]
    assert (q.weights, q.remaining, q.remaining_pct) == (4096, 2048, 50.0)
    assert len(acc.layers) == 12


@pytest.mark.parametrize("shared,prototype_params", [(False, 12 * 512), (True, 3 * 512)])
def test_splopa_learned_counts_prototypes_and_surviving_positions(shared, prototype_params):
    cfg = validate_trial_config(
        dict(method="splopa", num_splopa_prototypes=4, splopa_prototype_rank=2, shared_prototypes=shared, mask_init="kaiming")
    )
    model = prepare_model(tiny_bert(), cfg)
    apply_threshold(model, 0.5)
    acc = count_weights(model, "splopa")
    # prototypes: 4 * (32*2 + 2*32) = 512 each; positions: 32 surviving blocks * 4 prototypes
    assert acc.learned_params == prototype_params + 32 * 4
    assert acc.remaining_params == 34176
    assert acc.learned_pct == pytest.approx(100 * (prototype_params + 128) / ENCODER)
