"""Optuna through Ray Tune: points to evaluate go first, the study lives in the experiment folder."""

from __future__ import annotations

import optuna
import pytest

from spa_tune.experiment.run import run_experiment
from spa_tune.report.results import pareto_front
from spa_tune.search.build import optuna_storage_url
from spa_tune.spec.load import load_space

from .conftest import write_space

# The same density twice: the second point cannot learn (learning rate 1e-7) and is stopped by
# ASHA at the epoch-2 rung, yet it is told to the study like the others.
POINTS = [
    {"final_threshold": 0.5, "learning_rate": 3e-3},
    {"final_threshold": 0.5, "learning_rate": 1e-7},
]


def optuna_space(tmp_path, model_dir, name, searcher, num_samples, scheduler, epochs=2):
    return write_space(
        tmp_path, model_dir, name,
        trial={"num_train_epochs": epochs},
        search={
            "final_threshold": {"type": "choice", "values": [0.2, 0.5, 1.0]},
            "learning_rate": {"type": "loguniform", "low": 1e-7, "high": 1e-2},
        },
        searcher=searcher,
        num_samples=num_samples,
        scheduler=scheduler,
        max_concurrent_trials=1,
    )


def test_multi_objective_search_starts_from_the_points_and_returns_a_pareto_front(ray_runtime, tmp_path, tiny_model_dir):
    searcher = {"type": "optuna", "sampler": "nsga2", "metric": ["f1", "remaining_pct"], "mode": ["max", "min"],
                "seed": 3, "points_to_evaluate": POINTS}
    asha = {"type": "asha", "time_attr": "epoch", "grace_period": 2, "reduction_factor": 2}
    path = optuna_space(tmp_path, tiny_model_dir, "multi", searcher, 4, asha, epochs=4)
    outcome = run_experiment(load_space(path), str(path))
    rows = outcome.rows
    assert len(rows) == 4
    study = optuna.load_study(study_name="multi", storage=optuna_storage_url(outcome.folder))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4  # stopped ones too
    for trial, point in zip(study.trials, POINTS):  # the study's first trials are the points, in order
        assert trial.params == pytest.approx(point)
    (stopped,) = [r for r in rows if {k: r[k] for k in POINTS[1]} == pytest.approx(POINTS[1])]
    assert stopped["status"] == "stopped_early"
    assert study.trials[1].values == pytest.approx([stopped["f1"], stopped["remaining_pct"]])
    by_values = {(round(r["f1"], 6), round(r["remaining_pct"], 6)) for r in rows}
    assert {(round(t.values[0], 6), round(t.values[1], 6)) for t in study.trials} == by_values
    # spa-tune's front over all trials is Optuna's own Pareto front of the study
    optuna_front = {(round(t.values[0], 6), round(t.values[1], 6)) for t in study.best_trials}
    assert {(round(r["f1"], 6), round(r["remaining_pct"], 6)) for r in pareto_front(rows)} == optuna_front
    completed = [r for r in rows if r["status"] == "completed"]
    front = outcome.front
    assert front and front == pareto_front(completed, x="remaining_pct", y="f1")
    for a in front:
        for b in completed:
            assert not (b["f1"] >= a["f1"] and b["remaining_pct"] <= a["remaining_pct"]
                        and (b["f1"] > a["f1"] or b["remaining_pct"] < a["remaining_pct"]))
    for row in completed:
        if row not in front:
            assert any(f["f1"] >= row["f1"] and f["remaining_pct"] <= row["remaining_pct"] for f in front)


def test_single_objective_tpe_study_is_stored_in_the_experiment_folder(ray_runtime, tmp_path, tiny_model_dir):
    searcher = {"type": "optuna", "sampler": "tpe", "metric": "f1", "mode": "max", "seed": 0}
    path = optuna_space(tmp_path, tiny_model_dir, "single", searcher, 3, {"type": "none"})
    outcome = run_experiment(load_space(path), str(path))
    assert (outcome.folder / "optuna.db").is_file()
    study = optuna.load_study(study_name="single", storage=optuna_storage_url(outcome.folder))
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert sorted(t.value for t in study.trials) == pytest.approx(sorted(r["f1"] for r in outcome.rows))
    assert all(r["status"] == "completed" for r in outcome.rows)
