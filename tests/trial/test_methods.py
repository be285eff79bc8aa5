"""Short runs of every method and pruning variant, seeded reproducibility, the scheduled loss."""

import pytest
import torch

from spa_tune.config import validate_trial_config
from spa_tune.errors import SpaTuneError
from spa_tune.pruning.control import all_mask_scores, apply_threshold
from spa_tune.pruning.regularization import regularization
from spa_tune.pruning.schedule import lambda_at
from spa_tune.trial import run_trial
from spa_tune.trial.runner import TRAIN_INPUTS, training_loss
from spa_tune.trial.setup import build_trial

ENCODER, UNMASKED, BLOCK = 66944, 1408, 1024  # tiny BERT: 64 blocks of 32x32 in 12 masked layers


def short(tiny_model_dir, tmp_path, **overrides):
    config = dict(dataset="generated", generated_train_questions=48, generated_eval_questions=12, max_seq_length=64,
                  doc_stride=16, max_query_length=32, per_gpu_train_batch_size=8, max_steps=2, warmup_steps=0,
                  initial_warmup=0, final_warmup=0, model=tiny_model_dir, output_dir=str(tmp_path / "run"))
    return {**config, **overrides}


@pytest.mark.parametrize(
    "overrides,kept_blocks",
    [
        (dict(method="dense"), 64),
        (dict(method="fine-pruning", pruning_method="magnitude", final_threshold=0.5), 32),
        # all scores 0 < 0.5: only the 0.5 % floor survives, one block per layer
        (dict(method="fine-pruning", pruning_method="threshold", initial_threshold=0.5, final_threshold=0.5), 12),
        (dict(method="splopa", pruning_method="sigmoied_threshold", initial_threshold=0.6, final_threshold=0.6,
              num_splopa_prototypes=4), 12),
        (dict(method="fine-pruning", pruning_method="threshold", mask_scale=1.0, final_threshold=0.5), 64),
    ],
)
def test_methods_remaining_weights(tiny_model_dir, tmp_path, overrides, kept_blocks):
    final = run_trial(short(tiny_model_dir, tmp_path, **overrides))
    assert final["remaining_params"] == kept_blocks * BLOCK + UNMASKED
    if overrides["method"] == "dense":
        assert final["threshold"] == 1.0 and final["learned_pct"] == 100.0 and final["layers"] == {}


def test_global_topk_ranks_across_layers(tiny_model_dir, tmp_path):
    final = run_trial(short(tiny_model_dir, tmp_path, method="fine-pruning", pruning_method="topK",
                            global_topk=True, mask_init="kaiming", final_threshold=0.5))
    assert final["remaining_params"] == 32 * BLOCK + UNMASKED  # half of all blocks, counted over all layers
    assert {round(layer["remaining_pct"]) for layer in final["layers"].values()} != {50}


def test_same_seed_same_run_and_other_seed_differs(tiny_model_dir, tmp_path):
    config = short(tiny_model_dir, tmp_path, method="fine-pruning", pruning_method="l0", mask_init="uniform",
                   mask_scale=1.0, max_steps=3, learning_rate=1e-3)
    first, second = run_trial(config), run_trial(dict(config, output_dir=str(tmp_path / "again")))
    other = run_trial(dict(config, seed=7, output_dir=str(tmp_path / "other")))
    assert (first["loss"], first["f1"], first["remaining_params"]) == (second["loss"], second["f1"], second["remaining_params"])
    assert first["loss"] != other["loss"]


def test_training_loss_adds_scheduled_regularization(tiny_model_dir, tmp_path):
    cfg = validate_trial_config(short(tiny_model_dir, tmp_path, method="fine-pruning", pruning_method="sigmoied_threshold",
                                      initial_threshold=0.0, final_threshold=0.1, regularization="l1", final_lambda=40.0,
                                      mask_init="uniform", mask_scale=0.5))
    setup = build_trial(cfg)
    setup.model.eval()  # no dropout: both computations see the same forward pass
    batch = setup.train_features.with_format("torch", columns=list(TRAIN_INPUTS))[list(range(4))]
    apply_threshold(setup.model, 0.05)
    with torch.no_grad():
        got = training_loss(setup, batch, lambda_at(0.05, 0.1, 40.0))
        qa = setup.model(**batch).loss
        penalty = regularization(all_mask_scores(setup.model), "l1")
    assert lambda_at(0.05, 0.1, 40.0) == 20.0
    assert got.item() == pytest.approx((qa + 20.0 * penalty).item(), rel=1e-6)


def test_sequence_longer_than_model_positions(tiny_model_dir, tmp_path):
    with pytest.raises(SpaTuneError, match="max_seq_length: 300 exceeds the 256 positions"):
        run_trial(short(tiny_model_dir, tmp_path, max_seq_length=300))


def test_resume_refuses_a_different_configuration(tiny_model_dir, tmp_path):
    reports = []
    config = short(tiny_model_dir, tmp_path, method="splopa", num_splopa_prototypes=4, eval_every=1)
    run_trial(config, report=lambda m, c: reports.append(c))
    with pytest.raises(SpaTuneError, match="num_splopa_prototypes=4, not 8"):
        run_trial(dict(config, num_splopa_prototypes=8), resume_from=reports[0])
    resumed = run_trial(dict(config, output_dir=str(tmp_path / "elsewhere"), eval_every=0), resume_from=reports[0])
    assert resumed["step"] == 2
