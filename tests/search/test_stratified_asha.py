"""Strata and decisions of the density-stratified ASHA scheduler, driven result by result."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

from spa_tune.search.stratified_asha import StratifiedASHA, auto_stratum, stratum_label, stratum_of


@pytest.mark.parametrize(
    "config,stratum",
    [
        ({"method": "dense", "final_threshold": 0.1}, ("dense",)),
        ({"method": "splopa", "regularization": "l1", "final_lambda": 50, "final_threshold": 0.1},
         (("final_threshold", 0.1), ("final_lambda", 50))),
        ({"method": "fine-pruning", "pruning_method": "topK", "final_threshold": 0.3}, ("final_threshold", 0.3)),
        ({"method": "fine-pruning", "regularization": "null", "final_threshold": 0.3}, ("final_threshold", 0.3)),
        ({}, ("final_threshold", 0.7)),  # the trial defaults
    ],
)
def test_auto_stratum_is_the_density_knob(config, stratum):
    assert auto_stratum(config) == stratum


def test_named_keys_and_labels():
    stratum = stratum_of({"final_threshold": 0.1, "method": "splopa"}, ["method", "final_threshold"])
    assert stratum == (("method", "splopa"), ("final_threshold", 0.1))
    assert stratum_label(stratum) == "method=splopa,final_threshold=0.1"
    assert stratum_label(("final_lambda", 50)) == "final_lambda=50"
    assert stratum_label(("dense",)) == "dense"


def trial(trial_id, **config):
    """What a scheduler reads of a Ray trial: its id and config."""
    return SimpleNamespace(trial_id=trial_id, config=config)


def feed(scheduler, results):
    """Add every trial, then report (trial, epoch, f1) in order; return the decisions."""
    for t in {t.trial_id: t for t, _, _ in results}.values():
        scheduler.on_trial_add(None, t)
    return [scheduler.on_trial_result(None, t, {"epoch": epoch, "f1": f1}) for t, epoch, f1 in results]


SETTINGS = dict(metric="f1", mode="max", time_attr="epoch", grace_period=1, max_t=4, reduction_factor=2)


def test_a_sparse_trial_meets_only_its_own_density(tmp_path):
    dense_good, sparse_good, sparse_bad = trial("a", final_threshold=0.9), trial("b", final_threshold=0.1), trial("c", final_threshold=0.1)
    results = [(dense_good, 1, 80.0), (sparse_good, 1, 40.0), (sparse_bad, 1, 20.0)]
    decisions_file = tmp_path / "decisions.jsonl"
    stratified = StratifiedASHA(**SETTINGS, decisions_file=decisions_file)
    assert feed(stratified, results) == [TrialScheduler.CONTINUE, TrialScheduler.CONTINUE, TrialScheduler.STOP]
    plain = AsyncHyperBandScheduler(**SETTINGS)
    assert feed(plain, results) == [TrialScheduler.CONTINUE, TrialScheduler.STOP, TrialScheduler.STOP]
    logged = [json.loads(line) for line in decisions_file.read_text().splitlines()]
    assert [(d["trial_id"], d["stratum"], d["decision"]) for d in logged] == [
        ("a", "final_threshold=0.9", "continue"),
        ("b", "final_threshold=0.1", "continue"),
        ("c", "final_threshold=0.1", "stop"),
    ]
    assert stratified.stratum("c") == ("final_threshold", 0.1)


def test_fixed_keys_place_trials_whose_density_is_not_searched():
    scheduler = StratifiedASHA(**SETTINGS, fixed_config={"regularization": "l1", "final_lambda": 10})
    first, second = trial("a", final_lambda=100), trial("b", learning_rate=1e-3)
    assert feed(scheduler, [(first, 1, 90.0), (second, 1, 10.0)]) == [TrialScheduler.CONTINUE] * 2
    assert scheduler.stratum("b") == (("final_threshold", 0.7), ("final_lambda", 10))


def test_metric_and_mode_are_fixed_at_construction():
    scheduler = StratifiedASHA(**SETTINGS)
    assert scheduler.set_search_properties(None, None)
    assert scheduler.set_search_properties("f1", "max")
    assert not scheduler.set_search_properties("loss", "min")


def test_removed_and_failed_trials_leave_their_bracket():
    scheduler = StratifiedASHA(**SETTINGS)
    gone = trial("a", final_threshold=0.5)
    feed(scheduler, [(gone, 1, 50.0)])
    scheduler.on_trial_error(None, gone)
    scheduler.on_trial_remove(None, gone)  # a second removal is harmless
    assert "a" not in scheduler._strata[("final_threshold", 0.5)]._trial_info


def test_a_restored_scheduler_replays_its_rungs(tmp_path):
    decisions_file = tmp_path / "decisions.jsonl"
    before = StratifiedASHA(**SETTINGS, decisions_file=decisions_file)
    feed(before, [(trial("a", final_threshold=0.1), 1, 60.0), (trial("b", final_threshold=0.5), 1, 90.0)])
    restored = StratifiedASHA(**SETTINGS, decisions_file=decisions_file)  # as Tune unpickles it: empty
    late = trial("c", final_threshold=0.1)
    assert feed(restored, [(late, 1, 50.0)]) == [TrialScheduler.STOP]  # compared with "a" from before
    fresh = StratifiedASHA(**SETTINGS)
    assert feed(fresh, [(late, 1, 50.0)]) == [TrialScheduler.CONTINUE]
