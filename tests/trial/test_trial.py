"""End-to-end trials on the generated data with a tiny randomly initialised BERT."""

import json

import numpy as np
import pytest

from spa_tune.config import validate_trial_config
from spa_tune.data.squad_json import read_squad_json
from spa_tune.data.squad_metric import squad_scores
from spa_tune.trial import run_trial
from spa_tune.trial.evaluate import evaluate
from spa_tune.trial.records import read_accounting, read_block_masks, read_metrics_log
from spa_tune.trial.setup import build_trial

FAST = dict(
    dataset="generated",
    generated_train_questions=800,
    generated_eval_questions=120,
    max_seq_length=64,
    doc_stride=16,
    max_query_length=32,
    per_gpu_train_batch_size=32,
    per_gpu_eval_batch_size=64,
    mask_block_rows=32,
    mask_block_cols=32,
)


def test_fine_pruning_trial_learns_and_reports(tiny_model_dir, tmp_path):
    config = dict(
        FAST,
        model=tiny_model_dir,
        method="fine-pruning",
        pruning_method="topK",
        mask_init="constant",
        initial_threshold=1.0,
        final_threshold=0.5,
        warmup_steps=10,
        initial_warmup=1,
        final_warmup=2,
        num_train_epochs=12,
        learning_rate=2e-3,
        mask_scores_learning_rate=1e-2,
        eval_every=50,
        output_dir=str(tmp_path / "trial"),
    )
    untrained = build_trial(validate_trial_config(dict(config, output_dir=str(tmp_path / "untrained"))))
    before = evaluate(untrained.model, untrained.eval_examples, untrained.eval_features, untrained.cfg,
                      untrained.device, tmp_path / "untrained")
    reports = []
    final = run_trial(config, report=lambda metrics, ckpt: reports.append((metrics, ckpt)))
    print("F1 before", before["f1"], "after", final["f1"], "em", final["em"])
    assert final["f1"] > before["f1"] + 25, (before, final)
    assert len(reports) >= 2 and reports[-1][0] is final
    for key in ("step", "epoch", "loss", "threshold", "em", "f1", "remaining_pct", "learned_params", "learned_pct", "output_dir"):
        assert key in final
    assert final["threshold"] == 0.5
    # half of every layer's 32x32 blocks remain; biases and LayerNorms are unmasked
    assert final["remaining_pct"] == pytest.approx(100 * (32768 + 1408) / 66944)
    assert final["learned_params"] == final["remaining_params"]
    # predictions.json holds {id: answer} and gives the same EM/F1 when scored on its own
    predictions = json.loads((tmp_path / "trial" / "predictions.json").read_text())
    gold = {r["id"]: r["answers"]["text"] for r in read_squad_json(tmp_path / "trial" / "generated-data" / "dev.json")}
    assert set(predictions) == set(gold)
    rescored = squad_scores(predictions, gold)
    assert rescored["em"] == pytest.approx(final["em"]) and rescored["f1"] == pytest.approx(final["f1"])


@pytest.mark.parametrize("method,pruning", [("fine-pruning", "l0"), ("splopa", "topK")])
def test_resumed_trial_continues_exactly(tiny_model_dir, tmp_path, method, pruning):
    config = dict(
        FAST,
        generated_train_questions=200,
        generated_eval_questions=40,
        model=tiny_model_dir,
        method=method,
        pruning_method=pruning,
        mask_init="uniform" if pruning == "l0" else "constant",
        mask_scale=1.0 if pruning == "l0" else 0.0,
        final_threshold=0.5,
        warmup_steps=2,
        regularization="l0" if pruning == "l0" else None,
        final_lambda=1.0,
        num_splopa_prototypes=4,
        splopa_prototype_rank=2,
        max_steps=9,
        eval_every=3,
        keep_checkpoints=5,
        per_gpu_train_batch_size=8,
        learning_rate=1e-3,
        output_dir=str(tmp_path / "full"),
    )
    full = []
    run_trial(config, report=lambda m, c: full.append((m, c)))
    assert [m["step"] for m, _ in full] == [3, 6, 9]
    resumed = []
    run_trial(dict(config, output_dir=str(tmp_path / "resumed")), report=lambda m, c: resumed.append(m),
              resume_from=full[0][1])
    assert [m["step"] for m in resumed] == [6, 9]
    for (expected, _), got in zip(full[1:], resumed):
        assert got["loss"] == expected["loss"]
        assert (got["em"], got["f1"], got["remaining_pct"]) == (expected["em"], expected["f1"], expected["remaining_pct"])
    # the resumed folder's files are the uninterrupted run's (its log starts from the checkpoint's copy)
    assert logged_results(tmp_path / "resumed") == logged_results(tmp_path / "full")
    assert [e["step"] for e in read_metrics_log(tmp_path / "resumed")] == [3, 6, 9]
    assert read_accounting(tmp_path / "resumed") == read_accounting(tmp_path / "full") == full[-1][0]["layers"]
    masks, expected_masks = read_block_masks(tmp_path / "resumed"), read_block_masks(tmp_path / "full")
    assert masks and set(masks) == set(expected_masks)
    assert all(np.array_equal(masks[name], expected_masks[name]) for name in masks)


def logged_results(folder) -> list[dict]:
    """The metrics log of a trial folder without what differs between runs (times, folder names)."""
    return [{k: v for k, v in entry.items() if k not in ("time_total_s", "output_dir", "predictions_file")}
            for entry in read_metrics_log(folder)]


def test_distillation_from_a_teacher_changes_the_loss(tiny_model_dir, tmp_path):
    config = dict(FAST, generated_train_questions=64, generated_eval_questions=16, model=tiny_model_dir,
                  method="fine-pruning", max_steps=2, per_gpu_train_batch_size=8, output_dir=str(tmp_path / "plain"))
    plain = run_trial(config)
    distilled = run_trial(dict(config, teacher_type="bert", teacher_name_or_path=tiny_model_dir, alpha_ce=0.0,
                               alpha_distil=1.0, temperature=2.0, output_dir=str(tmp_path / "distil")))
    # the teacher is the untrained student: the KL term starts at 0 while the QA loss is ~ln(64)
    assert distilled["loss"] < 0.5 * plain["loss"]
    assert distilled["step"] == plain["step"] == 2


def test_a_diverging_loss_stops_the_trial_with_the_reason(tiny_model_dir, tmp_path):
    from spa_tune.errors import TrainingDiverged

    config = dict(
        model=tiny_model_dir, method="dense", dataset="generated", generated_train_questions=64, generated_eval_questions=8,
        max_seq_length=64, doc_stride=16, max_query_length=32, per_gpu_train_batch_size=16, num_train_epochs=2,
        learning_rate=1e30, output_dir=str(tmp_path),
    )
    with pytest.raises(TrainingDiverged, match=r"loss is (nan|inf) at step \d+: training diverged"):
        run_trial(config)
