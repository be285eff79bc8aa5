"""How a trial's end reads in results.csv, MLflow and the sheet: a diverged trial is failed with its reason."""

from __future__ import annotations

import math
from types import SimpleNamespace

from spa_tune.experiment.outcome import mark_diverged, trial_outcome
from spa_tune.search.diverged import divergence_result

REASON = "loss is nan at step 3: training diverged (try a lower learning_rate or final_lambda)"


def ray_trial(last_result, error=None):
    """What the outcome reads of a Ray trial: its last result and its error."""
    return SimpleNamespace(trial_id="t1", last_result=last_result, get_error=lambda: error)


def test_a_diverged_trial_is_failed_with_its_reason():
    before_evaluating = ray_trial(divergence_result(REASON, {"node_id": "n"}, ("f1", "em")))
    assert trial_outcome(before_evaluating, "TERMINATED") == ("failed", REASON)
    row = {"trial_id": "t1", "f1": math.nan, "em": math.nan, "step": None, "status": "unfinished", "error": ""}
    assert mark_diverged(row, before_evaluating, "TERMINATED") == {
        "trial_id": "t1", "f1": None, "em": None, "step": None, "status": "failed", "error": REASON}
    after_evaluating = ray_trial(divergence_result(REASON, {"f1": 40.0, "step": 20, "total_steps": 80}, ("f1",)))
    row = {"trial_id": "t1", "f1": 40.0, "step": 20, "total_steps": 80, "status": "stopped_early", "error": ""}
    assert mark_diverged(row, after_evaluating, "TERMINATED") == {**row, "status": "failed", "error": REASON}


def test_other_ends_are_tune_s_own():
    done = ray_trial({"f1": 50.0, "step": 80, "total_steps": 80})
    assert trial_outcome(done, "TERMINATED") == ("completed", "")
    stopped = ray_trial({"f1": 50.0, "step": 20, "total_steps": 80})
    assert trial_outcome(stopped, "TERMINATED") == ("stopped_early", "")
    crashed = ray_trial({"f1": 50.0, "step": 20, "total_steps": 80}, error="Traceback ...\nRuntimeError: CUDA out of memory")
    assert trial_outcome(crashed, "ERROR") == ("failed", "RuntimeError: CUDA out of memory")
    row = {"trial_id": "t1", "f1": 50.0, "status": "completed", "error": ""}
    assert mark_diverged(row, done, "TERMINATED") is row
    # a diverged trial whose end Tune has not recorded yet (the experiment was interrupted) is unfinished
    assert trial_outcome(ray_trial(divergence_result(REASON, {}, ("f1",))), "RUNNING") == ("unfinished", "")
