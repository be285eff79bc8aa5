"""Strata and decisions of the density-stratified ASHA scheduler, driven result by result on Ray's own
ASHA objects, and how a diverged trial's last result is treated by the scheduler and by Optuna."""

from __future__ import annotations

import json
import math
import pickle
from types import SimpleNamespace

import pytest
from ray.tune.schedulers import AsyncHyperBandScheduler, TrialScheduler

from spa_tune.search.diverged import DivergedTrialsFail, divergence_result
from spa_tune.search.stratified_asha import StratifiedASHA
from spa_tune.strata import auto_stratum, stratum_label, stratum_of


@pytest.mark.parametrize(
    "config,stratum",
    [
        ({"method": "dense", "final_threshold": 0.1}, ("dense",)),
        ({"method": "splopa", "regularization": "l1", "final_lambda": 50, "final_threshold": 0.1},
         ("splopa", ("final_threshold", 0.1), ("final_lambda", 50))),
        ({"method": "fine-pruning", "pruning_method": "topK", "final_threshold": 0.3}, ("fine-pruning", ("final_threshold", 0.3))),
        ({"method": "fine-pruning", "regularization": "null", "final_threshold": 0.3}, ("fine-pruning", ("final_threshold", 0.3))),
        ({}, ("fine-pruning", ("final_threshold", 0.7))),  # the trial defaults
        # a target density is the density, whatever schedule or penalty gets the trial there
        ({"method": "splopa", "target_remaining_pct": 50, "regularization": "l1", "final_lambda": 50},
         ("splopa", ("target_remaining_pct", 50))),
        ({"method": "fine-pruning", "target_remaining_pct": 12.5, "final_threshold": 0.3},
         ("fine-pruning", ("target_remaining_pct", 12.5))),
        ({"method": "splopa", "target_remaining_pct": None, "final_threshold": 0.3}, ("splopa", ("final_threshold", 0.3))),
    ],
)
def test_auto_stratum_is_the_method_and_its_density(config, stratum):
    assert auto_stratum(config) == stratum


def test_one_target_density_of_two_methods_makes_two_strata():
    fine, splopa = ({"method": m, "target_remaining_pct": 50.0} for m in ("fine-pruning", "splopa"))
    assert auto_stratum(fine) != auto_stratum(splopa)
    assert auto_stratum(splopa) == auto_stratum({**splopa, "target_remaining_pct": 50, "final_threshold": 0.9})


def test_named_keys_and_labels():
    stratum = stratum_of({"final_threshold": 0.1, "method": "splopa"}, ["method", "final_threshold"])
    assert stratum == (("method", "splopa"), ("final_threshold", 0.1))
    assert stratum_label(stratum) == "method=splopa,final_threshold=0.1"
    assert stratum_label(("splopa", ("target_remaining_pct", 50.0))) == "splopa target=50%"
    assert stratum_label(("fine-pruning", ("target_remaining_pct", 12.5))) == "fine-pruning target=12.5%"
    assert stratum_label(("splopa", ("final_threshold", 0.1), ("final_lambda", 50))) == "splopa final_threshold=0.1,final_lambda=50"
    assert stratum_label(("fine-pruning", ("final_threshold", 0.3))) == "fine-pruning final_threshold=0.3"
    assert stratum_label(("dense",)) == "dense"
    # strata of experiments started before strata had a method (their decisions files are replayed)
    assert stratum_label(("final_lambda", 50)) == "final_lambda=50"
    assert stratum_label((("final_threshold", 0.7), ("final_lambda", 50))) == "final_threshold=0.7,final_lambda=50"


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
        ("a", "fine-pruning final_threshold=0.9", "continue"),
        ("b", "fine-pruning final_threshold=0.1", "continue"),
        ("c", "fine-pruning final_threshold=0.1", "stop"),
    ]
    assert stratified.stratum("c") == ("fine-pruning", ("final_threshold", 0.1))


def test_fixed_keys_place_trials_whose_density_is_not_searched():
    scheduler = StratifiedASHA(**SETTINGS, fixed_config={"regularization": "l1", "final_lambda": 10})
    first, second = trial("a", final_lambda=100), trial("b", learning_rate=1e-3)
    assert feed(scheduler, [(first, 1, 90.0), (second, 1, 10.0)]) == [TrialScheduler.CONTINUE] * 2
    assert scheduler.stratum("b") == ("fine-pruning", ("final_threshold", 0.7), ("final_lambda", 10))


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
    assert "a" not in scheduler._members
    again = trial("a2", final_threshold=0.5)  # the stratum still works after the removal
    assert feed(scheduler, [(again, 1, 90.0)]) == [TrialScheduler.CONTINUE]


def test_only_rays_public_scheduler_api_is_used():
    """No private attribute of Ray's objects is read or written (``self._...`` is the router's own)."""
    import re
    from pathlib import Path

    import spa_tune.search.stratified_asha as module

    source = Path(module.__file__).read_text()
    private = [m.group(0) for m in re.finditer(r"([\w\])]+)\._[a-z]\w*", source) if m.group(1) != "self"]
    assert not private, private


def test_a_restored_scheduler_replays_its_rungs(tmp_path):
    decisions_file = tmp_path / "decisions.jsonl"
    before = StratifiedASHA(**SETTINGS, decisions_file=decisions_file)
    feed(before, [(trial("a", final_threshold=0.1), 1, 60.0), (trial("b", final_threshold=0.5), 1, 90.0)])
    restored = StratifiedASHA(**SETTINGS, decisions_file=decisions_file)  # as Tune unpickles it: empty
    late = trial("c", final_threshold=0.1)
    assert feed(restored, [(late, 1, 50.0)]) == [TrialScheduler.STOP]  # compared with "a" from before
    fresh = StratifiedASHA(**SETTINGS)
    assert feed(fresh, [(late, 1, 50.0)]) == [TrialScheduler.CONTINUE]


# --- methods, lone trials and first arrivals (Ray 2.60's AsyncHyperBandScheduler underneath) ----------

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP
LONG = dict(SETTINGS, max_t=16)  # rungs at epochs 1, 2, 4, 8 and 16


def test_methods_at_one_target_density_are_not_compared():
    """Fine-pruning learns every weight and scores above SPLoPA at first: only SPLoPA settings meet."""
    fine = [trial(f"f{i}", method="fine-pruning", target_remaining_pct=50) for i in range(3)]
    splopa = [trial(f"s{i}", method="splopa", target_remaining_pct=50) for i in range(2)]
    results = [(fine[0], 1, 80.0), (fine[1], 1, 70.0), (fine[2], 1, 75.0), (splopa[0], 1, 40.0), (splopa[1], 1, 30.0)]
    assert feed(StratifiedASHA(**SETTINGS), results) == [CONTINUE, STOP, CONTINUE, CONTINUE, STOP]
    # plain ASHA stops both SPLoPA settings for being SPLoPA
    assert feed(AsyncHyperBandScheduler(**SETTINGS), results)[3:] == [STOP, STOP]


def test_ray_asha_stops_only_against_trials_already_at_the_rung():
    """What the strata rely on, pinned on Ray's own scheduler: a trial alone at a rung, or the first
    to reach it, has no cutoff to fall below; only a later arrival is compared (with the earlier ones)."""
    lone, first, second = trial("lone"), trial("first"), trial("second")
    alone = AsyncHyperBandScheduler(**LONG)
    assert feed(alone, [(lone, epoch, 50.0 / epoch) for epoch in (1, 2, 4, 8, 15)]) == [CONTINUE] * 5
    assert alone.on_trial_result(None, lone, {"epoch": 16, "f1": 1.0}) == STOP  # max_t: every trial's budget
    pair = AsyncHyperBandScheduler(**LONG)
    assert feed(pair, [(first, 1, 5.0), (second, 1, 90.0), (first, 2, 6.0), (second, 2, 1.0)]) == [CONTINUE, CONTINUE, CONTINUE, STOP]


def test_a_stratum_with_a_single_trial_is_never_stopped(tmp_path):
    """Alone at its method and density, a trial that gets worse at every rung still runs to max_t,
    while many stronger trials of another method at the same density fill every rung first."""
    decisions_file = tmp_path / "decisions.jsonl"
    scheduler = StratifiedASHA(**LONG, decisions_file=decisions_file)
    strong = [trial(f"f{i}", method="fine-pruning", target_remaining_pct=10) for i in range(4)]
    lone = trial("s", method="splopa", target_remaining_pct=10)
    results = [(t, epoch, 90.0 - i) for epoch in (1, 2, 4, 8) for i, t in enumerate(strong)]
    results += [(lone, epoch, 40.0 / epoch) for epoch in (1, 2, 4, 8, 15)]
    decisions = feed(scheduler, results)
    assert decisions[-5:] == [CONTINUE] * 5 and STOP in decisions[:-5]
    logged = [json.loads(line) for line in decisions_file.read_text().splitlines() if '"s"' in line]
    assert {(d["stratum"], d["decision"]) for d in logged} == {("splopa target=10%", "continue")}


def test_the_first_trial_of_a_stratum_to_reach_a_rung_is_not_stopped():
    """Of two trials of one stratum, the first to arrive is never stopped, even when it is the weaker."""
    scheduler = StratifiedASHA(**LONG)
    early, late = trial("early", method="splopa", target_remaining_pct=30), trial("late", method="splopa", target_remaining_pct=30)
    other = trial("other", method="fine-pruning", target_remaining_pct=30)
    results = [(other, 1, 99.0), (early, 1, 10.0), (late, 1, 60.0), (other, 2, 99.0), (early, 2, 11.0), (late, 2, 9.0)]
    assert feed(scheduler, results) == [CONTINUE, CONTINUE, CONTINUE, CONTINUE, CONTINUE, STOP]


# --- resume ------------------------------------------------------------------------------------

def test_resume_keeps_the_method_aware_strata(tmp_path):
    """Tune restores the scheduler empty (unpickled as it was built); replaying the decisions puts every
    trial back in its stratum, so late trials meet exactly the trials of their method and density."""
    decisions_file = tmp_path / "scheduler_decisions.jsonl"
    before = StratifiedASHA(**SETTINGS, decisions_file=decisions_file)
    fine, splopa = trial("a", method="fine-pruning", target_remaining_pct=50), trial("b", method="splopa", target_remaining_pct=50)
    sparse = trial("c", method="splopa", regularization="l1", final_threshold=0.1, final_lambda=20)
    pickled = pickle.dumps(before)  # what the Tuner saved when the experiment started
    feed(before, [(fine, 1, 90.0), (splopa, 1, 60.0), (sparse, 1, 20.0)])

    restored = pickle.loads(pickled)
    late = [
        (trial("d", method="splopa", target_remaining_pct=50.0), 1, 70.0),  # above b: goes on
        (trial("e", method="fine-pruning", target_remaining_pct=50), 1, 80.0),  # below a
        (trial("f", method="splopa", regularization="l1", final_threshold=0.1, final_lambda=20), 1, 10.0),  # below c
        (trial("g", method="splopa", target_remaining_pct=10), 1, 1.0),  # alone at its density
    ]
    assert feed(restored, late) == [CONTINUE, STOP, STOP, CONTINUE]
    for trial_id in "abc":
        assert restored.stratum(trial_id) == before.stratum(trial_id)
    assert restored.stratum("d") == restored.stratum("b") == ("splopa", ("target_remaining_pct", 50))
    assert restored.stratum("f") == restored.stratum("c") == ("splopa", ("final_threshold", 0.1), ("final_lambda", 20))
    assert restored.stratum("e") == ("fine-pruning", ("target_remaining_pct", 50))
    labels = {json.loads(line)["trial_id"]: json.loads(line)["stratum"] for line in decisions_file.read_text().splitlines()}
    assert labels == {"a": "fine-pruning target=50%", "b": "splopa target=50%", "c": "splopa final_threshold=0.1,final_lambda=20",
                      "d": "splopa target=50%", "e": "fine-pruning target=50%", "f": "splopa final_threshold=0.1,final_lambda=20",
                      "g": "splopa target=10%"}


# --- diverged trials -----------------------------------------------------------------------------

def test_a_diverged_result_is_not_counted_at_a_rung(tmp_path):
    decisions_file = tmp_path / "decisions.jsonl"
    scheduler = StratifiedASHA(**SETTINGS, decisions_file=decisions_file)
    good, diverged, weak = (trial(i, final_threshold=0.5) for i in "abc")
    feed(scheduler, [(good, 1, 50.0), (diverged, 1, 60.0)])
    last = divergence_result("loss is nan at step 12: training diverged", {"epoch": 1, "f1": 60.0}, ("f1",))
    assert scheduler.on_trial_result(None, diverged, {**last, "epoch": 2}) == CONTINUE
    scheduler.on_trial_complete(None, diverged, {**last, "epoch": 2})
    assert "b" not in scheduler._strata[("fine-pruning", ("final_threshold", 0.5))]._trial_info
    assert [json.loads(line)["trial_id"] for line in decisions_file.read_text().splitlines()] == ["a", "b"]
    assert feed(scheduler, [(weak, 2, 40.0)]) == [CONTINUE]  # the first at rung 2: the diverged result is not there


def test_a_diverged_trial_is_told_to_optuna_as_failed():
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    search = DivergedTrialsFail(OptunaSearch(space={"x": tune.uniform(0, 1)}, metric="f1", mode="max", seed=0))
    for trial_id in ("ok", "nan"):
        assert set(search.suggest(trial_id)) == {"x"}
    search.on_trial_result("ok", {"f1": 50.0, "training_iteration": 1})
    search.on_trial_complete("ok", {"f1": 50.0, "training_iteration": 1})
    diverged = divergence_result("loss is nan at step 3: training diverged", {}, ("f1", "em"))
    assert math.isnan(diverged["f1"]) and diverged["diverged"].startswith("loss is nan")
    search.on_trial_result("nan", {**diverged, "training_iteration": 1})
    search.on_trial_complete("nan", {**diverged, "training_iteration": 1})
    states = [t.state for t in search.searcher._ot_study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]
    assert search.get_state() == {}
