"""The trial's files (spa_tune.trial.records): what each writer writes, its reader reads back."""

import json

import numpy as np
import pytest
import torch

from spa_tune.errors import SpaTuneError
from spa_tune.trial.records import (
    ACCOUNTING_FILE,
    BLOCK_MASKS_FILE,
    CONFIG_FILE,
    METRICS_LOG,
    append_metrics,
    checkpoint_folders,
    checkpoint_name,
    checkpoint_step,
    has_checkpoint_entries,
    logged_threshold,
    read_accounting,
    read_block_masks,
    read_feature_cache_record,
    read_metrics_log,
    read_trial_config,
    restore_metrics_log,
    write_accounting,
    write_block_masks,
    write_feature_cache_record,
    write_trial_config,
)


def test_the_metrics_log_holds_one_line_per_evaluation_without_the_layer_table(tmp_path):
    layers = {"bert.encoder.layer.0.attention.self.query": {"remaining_pct": 50.0, "learned_params": 8}}
    append_metrics(tmp_path, {"step": 3, "threshold": 0.9, "f1": 12.5, "layers": layers})
    append_metrics(tmp_path, {"step": 6, "threshold": 0.7, "f1": 20.0, "layers": layers})
    assert read_metrics_log(tmp_path) == [{"step": 3, "threshold": 0.9, "f1": 12.5}, {"step": 6, "threshold": 0.7, "f1": 20.0}]
    assert len((tmp_path / METRICS_LOG).read_text().splitlines()) == 2
    assert (logged_threshold(tmp_path, 3), logged_threshold(tmp_path, 6), logged_threshold(tmp_path, 9)) == (0.9, 0.7, None)
    assert read_metrics_log(tmp_path / "none") == [] and logged_threshold(tmp_path / "none", 3) is None


def test_a_broken_metrics_line_is_one_error_naming_the_file_and_line(tmp_path):
    append_metrics(tmp_path, {"step": 3, "threshold": 0.9})
    with open(tmp_path / METRICS_LOG, "a") as fh:
        fh.write('{"step": 6, "thresh\n')
    with pytest.raises(SpaTuneError, match=rf"^{tmp_path / METRICS_LOG}: line 2 is not JSON$"):
        read_metrics_log(tmp_path)
    with pytest.raises(SpaTuneError, match="line 2 is not JSON"):
        logged_threshold(tmp_path, 3)  # read from the newest line backwards: the broken line comes first


def test_the_newest_entry_of_a_step_wins_and_older_lines_are_not_read(tmp_path):
    (tmp_path / METRICS_LOG).write_text('not json\n{"step": 3, "threshold": 0.5}\n{"step": 3, "threshold": 0.4}\n')
    assert logged_threshold(tmp_path, 3) == 0.4


def test_a_resumed_run_keeps_its_own_log_and_a_fresh_folder_gets_the_checkpoints(tmp_path):
    checkpoint, fresh, own = tmp_path / "checkpoint", tmp_path / "fresh", tmp_path / "own"
    for folder in (checkpoint, fresh, own):
        folder.mkdir()
    append_metrics(checkpoint, {"step": 3})
    append_metrics(own, {"step": 6})
    restore_metrics_log(checkpoint, fresh)
    restore_metrics_log(checkpoint, own)
    assert read_metrics_log(fresh) == [{"step": 3}] and read_metrics_log(own) == [{"step": 6}]


def test_accounting_and_block_masks_round_trip(tmp_path):
    assert read_accounting(tmp_path) == {} and read_block_masks(tmp_path) == {}
    layers = {"layer.0.query": {"remaining_pct": 25.0, "learned_params": 4, "learned_pct": 0.5}}
    write_accounting(tmp_path, layers)
    write_accounting(tmp_path, {**layers, "layer.0.key": {"remaining_pct": 0.0}})  # replaces, not appends
    assert read_accounting(tmp_path) == {**layers, "layer.0.key": {"remaining_pct": 0.0}}
    assert json.loads((tmp_path / ACCOUNTING_FILE).read_text())["layer.0.query"]["learned_params"] == 4
    write_block_masks(tmp_path, {"layer.0.query": torch.tensor([[1.0, 0.0], [0.3, 0.0]]), "plain": np.array([0, 2])})
    masks = read_block_masks(tmp_path)
    assert (tmp_path / BLOCK_MASKS_FILE).is_file() and set(masks) == {"layer.0.query", "plain"}
    assert masks["layer.0.query"].dtype == bool and masks["layer.0.query"].tolist() == [[True, False], [True, False]]
    assert masks["plain"].tolist() == [False, True]


def test_trial_config_and_feature_cache_record_round_trip(tmp_path):
    write_trial_config(tmp_path, {"seed": 42, "method": "splopa"})
    assert read_trial_config(tmp_path) == {"method": "splopa", "seed": 42}
    assert list(json.loads((tmp_path / CONFIG_FILE).read_text())) == ["method", "seed"]
    assert read_feature_cache_record(tmp_path) is None
    record = {"location": "/cache", "train": {"entry": "ab", "built": True, "rows": 10}}
    write_feature_cache_record(tmp_path, record)
    assert read_feature_cache_record(tmp_path) == record


@pytest.mark.parametrize("text,reason", [(None, "No such file"), ("{", "Expecting"), ("[1, 2]", "not a JSON object")])
def test_an_unreadable_trial_config_is_one_line_naming_the_file(tmp_path, text, reason):
    if text is not None:
        (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(SpaTuneError, match=rf"^{tmp_path / CONFIG_FILE}: unreadable trial config \(.*{reason}"):
        read_trial_config(tmp_path)


def test_checkpoint_folders_by_step_only_named_ones(tmp_path):
    for step in (120, 8, 1000000):
        (tmp_path / checkpoint_name(step)).mkdir()
    (tmp_path / "checkpoint_best").mkdir()  # not a step
    (tmp_path / "checkpoint_000050").write_text("")  # a file, not a folder
    assert checkpoint_name(8) == "checkpoint_000008"
    assert [checkpoint_step(p) for p in checkpoint_folders(tmp_path)] == [8, 120, 1000000]
    assert checkpoint_step(tmp_path / "trial_state.pt") is None


def test_an_unfinished_checkpoint_makes_a_trial_folder_without_checkpoints(tmp_path):
    assert not has_checkpoint_entries(tmp_path)
    (tmp_path / "checkpoint_000002.tmp").mkdir()  # being written when the trial stopped
    assert has_checkpoint_entries(tmp_path) and checkpoint_folders(tmp_path) == []
