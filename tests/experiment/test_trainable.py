"""The trainable's pure parts: device choice and what Tune is shown."""

from __future__ import annotations

import logging

import torch

from spa_tune.config import validate_trial_config
from spa_tune.experiment.trainable import trial_device, trial_tags, tune_metrics


def test_cpu_trial_without_gpu_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="spa_tune.trial"):
        assert trial_device("auto", 0) == "cpu"
    assert "no GPU requested for this trial" in caplog.text


def test_gpu_given_but_not_visible_runs_on_cpu_with_a_warning(caplog):
    if torch.cuda.is_available():
        assert trial_device("auto", 1) == "cuda"
        return
    with caplog.at_level(logging.WARNING, logger="spa_tune.trial"):
        assert trial_device("auto", 1) == "cpu"
    assert "torch sees no CUDA device; running on CPU" in caplog.text


def test_explicit_cpu_is_kept(caplog):
    with caplog.at_level(logging.WARNING, logger="spa_tune.trial"):
        assert trial_device("cpu", 1) == "cpu"
    assert caplog.text == ""


def test_tune_sees_scalars_with_the_table_columns_first():
    metrics = {"step": 5, "loss": 1.0, "layers": {"x": {}}, "output_dir": "/x", "predictions_file": "/p",
               "epoch": 1.0, "learned_pct": 2.0, "remaining_pct": 50.0, "f1": 70.0}
    shown = tune_metrics(metrics)
    assert list(shown) == ["f1", "remaining_pct", "learned_pct", "epoch", "step", "loss"]


def test_tags_name_method_pruning_method_and_density():
    cfg = validate_trial_config({"method": "splopa", "pruning_method": "l0"})
    assert trial_tags(cfg, "t1", "final_threshold=0.7") == {
        "method": "splopa", "trial_id": "t1", "density": "final_threshold=0.7", "pruning_method": "l0"}
    assert "pruning_method" not in trial_tags(validate_trial_config({"method": "dense"}), "t2", "dense")
