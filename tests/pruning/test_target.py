"""Target density: the kept fraction a target asks for, masks chosen across layers, trials that end on it."""

import pytest
import torch

from spa_tune.config import validate_trial_config
from spa_tune.errors import SpaTuneError
from spa_tune.model.inject import prepare_model
from spa_tune.pruning.control import masked_layers
from spa_tune.pruning.target import density_keep_masks, keep_fraction_for, pruning_schedule
from spa_tune.trial import run_trial
from spa_tune.trial.checkpoint import RESUMABLE_CHANGES
from tests.conftest import tiny_bert
from tests.trial.test_methods import ENCODER, UNMASKED, short

MASKED = ENCODER - UNMASKED  # the tiny BERT's 12 Linear weights


def test_keep_fraction_counts_the_unmasked_parameters():
    # 50 % of the encoder: the unmasked 1408 parameters remain anyway, the masked weights make up the rest
    fraction = keep_fraction_for(50.0, ENCODER, MASKED)
    assert fraction * MASKED + UNMASKED == pytest.approx(0.5 * ENCODER)
    assert keep_fraction_for(100.0, ENCODER, MASKED) == 1.0


def test_a_target_below_the_unmasked_parameters_is_refused():
    floor = 100.0 * UNMASKED / ENCODER  # 2.10 %
    with pytest.raises(SpaTuneError, match=r"^target_remaining_pct: 2 is not above 2.10 %"):
        keep_fraction_for(2.0, ENCODER, MASKED)
    assert keep_fraction_for(floor + 0.01, ENCODER, MASKED) > 0


def test_target_with_dense_is_refused():
    with pytest.raises(SpaTuneError, match="target_remaining_pct: method dense prunes nothing"):
        validate_trial_config(dict(method="dense", target_remaining_pct=50))
    for bad in (0, -5, 100.5):
        with pytest.raises(SpaTuneError, match="target_remaining_pct"):
            validate_trial_config(dict(target_remaining_pct=bad))


def test_density_masks_keep_the_highest_scores_across_layers_by_weight():
    cfg = validate_trial_config(dict(method="fine-pruning", pruning_method="sigmoied_threshold",
                                     mask_block_rows=16, mask_block_cols=16))
    model = prepare_model(tiny_bert(), cfg)
    layers = [layer for _, layer in masked_layers(model)]
    torch.manual_seed(0)
    for layer in layers:
        layer.mask_scores.data.normal_()
    for fraction in (1.0, 0.5, 0.3, 0.05):
        masks = density_keep_masks(layers, fraction)
        kept = sum(int(m.sum()) * 256 for m in masks)
        assert fraction * MASKED - 256 < kept <= fraction * MASKED
        lowest_kept = min(float(layer.mask_scores.detach()[m].min()) for layer, m in zip(layers, masks) if m.any())
        highest_dropped = max((float(layer.mask_scores.detach()[~m].max()) for layer, m in zip(layers, masks) if (~m).any()), default=-1e9)
        assert lowest_kept >= highest_dropped


def test_density_masks_treat_a_shared_score_as_one_unit():
    cfg = validate_trial_config(dict(method="fine-pruning", pruning_method="sigmoied_threshold",
                                     mask_structure="heads_neurons"))
    model = prepare_model(tiny_bert(), cfg)
    layers = [layer for _, layer in masked_layers(model)]
    torch.manual_seed(1)
    for scores in {id(layer.mask_scores): layer.mask_scores for layer in layers}.values():
        scores.data.normal_()
    masks = density_keep_masks(layers, 0.4)
    by_tensor = {}
    for layer, mask in zip(layers, masks):
        by_tensor.setdefault(id(layer.mask_scores), set()).add(tuple(mask.reshape(-1).tolist()))
    assert all(len(variants) == 1 for variants in by_tensor.values())  # q, k, v and output agree per head
    kept = sum(int(m.sum()) * layer.spec.block_rows * layer.spec.block_cols for layer, m in zip(layers, masks))
    unit = {}  # weights governed by one score: a whole head (4 matrices) or a whole neuron (2)
    for layer in layers:
        unit[id(layer.mask_scores)] = unit.get(id(layer.mask_scores), 0) + layer.spec.block_rows * layer.spec.block_cols
    assert 0.4 * MASKED - max(unit.values()) < kept <= 0.4 * MASKED


def test_schedule_by_density_runs_from_everything_to_the_target():
    cfg = validate_trial_config(dict(method="splopa", pruning_method="l0", regularization="l0", final_lambda=10.0,
                                     target_remaining_pct=30.0, warmup_steps=10, initial_warmup=1, final_warmup=2))
    schedule = pruning_schedule(cfg, 100, ENCODER, MASKED)
    final = keep_fraction_for(30.0, ENCODER, MASKED)
    assert schedule.by_density and schedule.at(0) == 1.0 and schedule.at(10) == 1.0
    assert schedule.at(81) == pytest.approx(final) and schedule.at(100) == pytest.approx(final)
    assert 1.0 > schedule.at(40) > final
    assert schedule.regularization_weight(1.0) == 0.0 and schedule.regularization_weight(final) == pytest.approx(10.0)
    topk = pruning_schedule(validate_trial_config(dict(pruning_method="topK", target_remaining_pct=30.0)), 100,
                            ENCODER, MASKED)
    assert not topk.by_density and topk.final == pytest.approx(final) and topk.initial == 1.0


TARGET_CASES = [
    dict(method="fine-pruning", pruning_method="topK"),
    dict(method="fine-pruning", pruning_method="magnitude"),
    dict(method="fine-pruning", pruning_method="topK", global_topk=True),
    dict(method="fine-pruning", pruning_method="sigmoied_threshold", regularization="l1", final_lambda=50.0),
    dict(method="fine-pruning", pruning_method="threshold"),
    dict(method="fine-pruning", pruning_method="l0", regularization="l0", final_lambda=1.0),
    dict(method="splopa", pruning_method="sigmoied_threshold", regularization="l1", final_lambda=50.0,
         num_splopa_prototypes=4),
    dict(method="splopa", pruning_method="topK", num_splopa_prototypes=4),
    dict(method="splopa", pruning_method="l0", regularization="l0", final_lambda=1.0, num_splopa_prototypes=4),
]


@pytest.mark.parametrize("overrides", TARGET_CASES, ids=lambda o: f"{o['method']}-{o['pruning_method']}")
@pytest.mark.parametrize("target", [50.0, 30.0])
def test_a_trial_ends_within_one_point_of_its_target(tiny_model_dir, tmp_path, overrides, target):
    # 4x4 blocks: a block is 0.02 % of the encoder, so block granularity cannot hide a miss
    blocks = dict(mask_block_rows=4, mask_block_cols=4)
    logged = []
    final = run_trial(
        short(tiny_model_dir, tmp_path, **overrides, **blocks, target_remaining_pct=target, max_steps=6, warmup_steps=1,
              initial_warmup=1, final_warmup=1, eval_every=2, mask_scores_learning_rate=0.1),
        report=lambda metrics, checkpoint: logged.append(metrics),
    )
    assert abs(final["remaining_pct"] - target) <= 1.0, final["remaining_pct"]
    assert [m["target_remaining_pct"] for m in logged] == [target] * 3
    assert logged[0]["remaining_pct"] > final["remaining_pct"]  # the schedule prunes gradually


def test_without_a_target_nothing_changes(tiny_model_dir, tmp_path):
    config = short(tiny_model_dir, tmp_path, method="fine-pruning", pruning_method="sigmoied_threshold",
                   initial_threshold=0.0, final_threshold=0.1, regularization="l1", final_lambda=40.0,
                   mask_init="uniform", mask_scale=0.5)
    final = run_trial(config)
    assert "target_remaining_pct" not in final and "target_remaining_pct" not in RESUMABLE_CHANGES


def test_a_target_trial_resumes_exactly(tiny_model_dir, tmp_path):
    config = short(tiny_model_dir, tmp_path, method="splopa", pruning_method="sigmoied_threshold", regularization="l1",
                   final_lambda=20.0, num_splopa_prototypes=4, mask_block_rows=8, mask_block_cols=8,
                   target_remaining_pct=40.0, max_steps=6, eval_every=3)
    checkpoints = []
    whole = run_trial(config, report=lambda m, c: checkpoints.append(c))
    resumed = run_trial(dict(config, output_dir=str(tmp_path / "resumed")), resume_from=checkpoints[0])
    assert (resumed["loss"], resumed["f1"], resumed["remaining_params"]) == (whole["loss"], whole["f1"], whole["remaining_params"])


def test_a_target_trial_loads_back_with_the_masks_it_ended_with(tiny_model_dir, tmp_path):
    from spa_tune.export.source import load_trained, newest_checkpoint
    from spa_tune.model.counting import count_weights

    config = short(tiny_model_dir, tmp_path, method="fine-pruning", pruning_method="sigmoied_threshold",
                   regularization="l1", final_lambda=20.0, mask_block_rows=8, mask_block_cols=8,
                   target_remaining_pct=35.0, max_steps=4)
    final = run_trial(config)
    trained = load_trained(newest_checkpoint(tmp_path / "run"))
    assert count_weights(trained.model, "fine-pruning").remaining_params == final["remaining_params"]
