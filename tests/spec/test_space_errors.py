"""Every bad space file or --set gives one error line naming file and field, exit 2, before Ray."""

from __future__ import annotations

import pytest
import yaml

from spa_tune.cli import main

VALID = {
    "name": "errors",
    "trial": {"method": "splopa", "model": "minilm", "pruning_method": "topK", "num_train_epochs": 2, "eval_every": 50},
    "search": {"final_threshold": {"type": "grid", "values": [0.1, 0.3]}},
    "searcher": {"type": "grid"},
    "scheduler": {"type": "asha", "grace_period": 1},
}


def with_change(path: str, value):
    """VALID with the dotted ``path`` set to ``value`` (or removed when value is ...)."""
    data = yaml.safe_load(yaml.safe_dump(VALID))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    if value is ...:
        node.pop(last)
    else:
        node[last] = value
    return data


CASES = [
    # (change, value, expected message after "spa-tune: error: <file>: ")
    ("serach", {}, "serach: Extra inputs are not permitted"),
    ("name", ..., "name: Field required"),
    ("name", "../up", "name: String should match pattern"),
    ("trial.learnin_rate", 1e-4, "trial: unknown key 'learnin_rate' (did you mean 'learning_rate'?)"),
    ("trial.learning_rate", -1, "trial.learning_rate: Input should be greater than 0 (got -1)"),
    ("trial.output_dir", "x", "trial.output_dir: set by spa-tune for every trial"),
    ("search.final_lamda", {"type": "grid", "values": [1]}, "search: unknown trial key 'final_lamda' (did you mean 'final_lambda'?)"),
    ("search.final_lambda", {"low": 1, "high": 2}, "search.final_lambda: needs a type"),
    ("search.final_lambda", {"type": "gauss", "low": 1}, "search.final_lambda: type must be one of grid, choice"),
    ("search.final_lambda", {"type": "loguniform", "low": "abc", "high": 10}, "search.final_lambda.low: Input should be a valid number"),
    ("search.final_lambda", {"type": "loguniform", "low": 0, "high": 10}, "search.final_lambda.low: 0.0 must be > 0 for loguniform"),
    ("search.final_lambda", {"type": "uniform", "low": 5, "high": 1}, "search.final_lambda.low: 5.0 must be smaller than high"),
    ("search.final_lambda", {"type": "quniform", "low": 1, "high": 5}, "search.final_lambda.q: quniform needs a rounding step q"),
    ("search.final_lambda", {"type": "grid", "values": []}, "search.final_lambda.values: List should have at least 1 item"),
    ("search.final_threshold", {"type": "grid", "values": [0.5, 2]}, "search.final_threshold.values[1]: 2.0 is outside [0, 1]"),
    ("search.num_splopa_prototypes", {"type": "randint", "low": 0, "high": 4}, "search.num_splopa_prototypes.low: Input should be greater than or equal to 1"),
    ("search.output_dir", {"type": "grid", "values": ["a"]}, "search.output_dir: set by spa-tune, cannot be searched"),
    ("search.learning_rate", {"type": "loguniform", "low": 1e-5, "high": 1e-3}, "search.learning_rate.type: searcher grid enumerates grid domains only"),
    ("searcher.type", "hyperopt", "searcher.type: Input should be 'grid', 'random' or 'optuna'"),
    ("searcher.metric", "accuracy", "searcher.metric: unknown metric 'accuracy'"),
    ("searcher.metric", ["f1", "remaining_pct"], "searcher.mode: 1 mode(s) for 2 metric(s)"),
    ("searcher.points_to_evaluate", [{"learning_rate": 1e-4}], "searcher.points_to_evaluate[0].learning_rate: not a searched key"),
    ("searcher.points_to_evaluate", [{"final_threshold": 0.5}], "searcher.points_to_evaluate: use searcher random or optuna"),
    ("searcher", {"type": "optuna"}, "search.final_threshold.type: the optuna searcher samples; use choice instead of grid"),
    ("searcher", {"type": "optuna", "sampler": "nsga2"}, "searcher.sampler: nsga2 is for several objectives"),
    ("searcher", {"type": "random", "metric": ["f1", "learned_pct"], "mode": ["max", "min"]},
     "searcher.metric: several objectives need searcher type optuna"),
    ("search", {"final_threshold": {"type": "choice", "values": [0.1]}, "learning_rate": {"type": "uniform", "low": 1e-5, "high": 1e-4}},
     "search.final_threshold.type: searcher grid enumerates grid domains only"),
    ("searcher", {"type": "optuna", "points_to_evaluate": [{"final_threshold": 0.1}]},
     "search.final_threshold.type: the optuna searcher samples"),
    ("searcher", {"type": "optuna", "population_size": 1}, "searcher.population_size: Input should be greater than or equal to 2"),
    ("scheduler.type", "hyperband", "scheduler.type: Input should be 'asha' or 'none'"),
    ("scheduler.time_attr", "minutes", "scheduler.time_attr: 'minutes' is not one of step, epoch"),
    ("scheduler.max_t", 0.5, "scheduler.max_t: 0.5 is smaller than grace_period (1.0)"),
    ("scheduler.grace_period", 3, "scheduler.grace_period: 3.0 epochs is longer than the trial (2.0 epochs)"),
    ("scheduler.reduction_factor", 1, "scheduler.reduction_factor: Input should be greater than 1"),
    ("scheduler.stratify_by", "density", "scheduler.stratify_by: 'density' is not a trial key"),
    ("scheduler.time_attr", "step", "scheduler.max_t: required with time_attr step"),
    ("trial.eval_every", ..., "trial.eval_every: 0 (the default) reports each trial once, at its end, so scheduler asha could stop nothing"),
    ("trial.eval_every", 0, "trial.eval_every: 0 reports each trial once, at its end, so scheduler asha could stop nothing; "
                            "evaluate every N steps (eval_every: N) or set scheduler.type: none"),
    ("search.eval_every", {"type": "grid", "values": [50, 0]}, "search.eval_every.values[1]: 0 reports each trial once"),
    ("resources.gpu", -1, "resources.gpu: Input should be greater than or equal to 0 (got -1)"),
    ("resources.gpu", 1.5, "resources.gpu: 1.5 - more than one GPU must be a whole number"),
    ("resources.cpus", 2, "resources.cpus: Extra inputs are not permitted"),
    ("num_samples", 0, "num_samples: Input should be greater than or equal to 1 (got 0)"),
    ("max_concurrent_trials", 0, "max_concurrent_trials: Input should be greater than or equal to 1 (got 0)"),
    ("mlflow.tracking_url", "http://x", "mlflow.tracking_url: Extra inputs are not permitted"),
    ("trial", ["method"], "trial: Input should be a valid dictionary (got ['method'])"),
]



@pytest.mark.parametrize("change,value,message", CASES, ids=[f"{c[0]}={c[1]!r}"[:40] for c in CASES])
def test_bad_space_file(tmp_path, capsys, no_ray, change, value, message):
    path = tmp_path / "space.yaml"
    data = with_change(change, value)
    data["storage_path"] = str(tmp_path / "runs")
    path.write_text(yaml.safe_dump(data))
    for argv in (["--space", str(path)], ["validate", "--space", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err
        assert err.startswith(f"spa-tune: error: {path}: {message}"), err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--set", "num_samples"], "--set: expected key=value, got 'num_samples'"),
        (["--set", "num_sample=2"], "--set num_sample: unknown field (did you mean 'num_samples'?)"),
        (["--set", "num_samples=two"], "--set: num_samples: Input should be a valid integer"),
        (["--set", "scheduler.grace_period=-1"], "--set: scheduler.grace_period: Input should be greater than 0"),
        (["--set", "learning_rate=fast"], "--set: trial.learning_rate: Input should be a valid number"),
        (["--set", "trial.method.x=1"], "--set trial.method.x: method is not a section"),
    ],
)
def test_bad_override(tmp_path, capsys, no_ray, argv, message):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(dict(VALID, storage_path=str(tmp_path / "runs"))))
    assert main(["--space", str(path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"spa-tune: error: {message}") and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.yaml"]


@pytest.mark.parametrize(
    "text,message",
    [
        ("name: [unclosed", "line 1 invalid YAML"),
        ("- just\n- a list\n", "expected a mapping of space sections, got list"),
    ],
)
def test_unreadable_space_file(tmp_path, capsys, no_ray, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    assert main(["--space", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"spa-tune: error: {path}:") and message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.yaml"]


def test_missing_space_file(tmp_path, capsys, no_ray):
    assert main(["--space", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err == f"spa-tune: error: {tmp_path / 'nope.yaml'}: no such file\n"


def test_existing_experiment_is_not_overwritten(tmp_path, capsys, no_ray):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(dict(VALID, storage_path=str(tmp_path / "runs"))))
    folder = tmp_path / "runs" / "errors"
    folder.mkdir(parents=True)
    (folder / "experiment.json").write_text("{}")
    assert main(["--space", str(path)]) == 2
    assert "experiment 'errors' exists; continue it with `spa-tune resume" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["experiment.json"]


def test_validate_reports_the_planned_trials(tmp_path, capsys):
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(VALID))
    assert main(["validate", "--space", str(path), "--set", "num_samples=3"]) == 0
    assert capsys.readouterr().out == f"{path}: ok: experiment errors, 6 trials (grid searcher, 2 grid point(s) x 3 sample(s))\n"


@pytest.mark.parametrize("name", ["quickstart", "splopa", "fine_pruning"])
def test_shipped_spaces_validate(name, capsys):
    assert main(["validate", "--space", f"search_spaces/{name}.yaml"]) == 0


@pytest.mark.parametrize("command", ["resume", "ui"])
def test_folder_that_is_not_an_experiment(tmp_path, capsys, no_ray, command):
    assert main([command, str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"spa-tune: error: {tmp_path}: not a spa-tune experiment folder (no experiment.json or space.yaml)\n"
    )


def test_unreachable_tracking_server_fails_before_ray(tmp_path, capsys, no_ray):
    path = tmp_path / "space.yaml"
    data = dict(VALID, storage_path=str(tmp_path / "runs"), mlflow={"tracking_uri": "http://127.0.0.1:9"})
    path.write_text(yaml.safe_dump(data))
    assert main(["--space", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("spa-tune: error: mlflow.tracking_uri http://127.0.0.1:9: cannot reach the server: ")
    assert err.count("\n") == 1 and not (tmp_path / "runs").exists(), err


def test_optuna_point_must_name_every_searched_key(tmp_path, capsys, no_ray):
    data = dict(VALID, storage_path=str(tmp_path / "runs"),
                search={"final_threshold": {"type": "choice", "values": [0.1, 0.3]},
                        "learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-4}},
                searcher={"type": "optuna", "points_to_evaluate": [{"final_threshold": 0.1}]})
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["--space", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"spa-tune: error: {path}: searcher.points_to_evaluate[0]: optuna needs every searched key, missing learning_rate\n"
    )


def test_trial_larger_than_the_cluster(caplog):
    import logging

    from spa_tune.errors import SpaTuneError
    from spa_tune.experiment.run import check_resources
    from spa_tune.spec.load import validate_space

    spec = validate_space(dict(VALID, resources={"cpu": 1, "gpu": 1}), "space.yaml")
    with pytest.raises(SpaTuneError, match=r"^resources.gpu: a trial asks for 1 GPUs, the Ray cluster has 0 \(lower it"):
        check_resources(spec, {"CPU": 2.0}, attached=False)
    with caplog.at_level(logging.WARNING, logger="spa_tune.experiment"):
        check_resources(spec, {"CPU": 2.0}, attached=True)  # an autoscaler may still add GPU nodes
    assert "trials wait until the cluster has them" in caplog.text
    check_resources(spec, {"CPU": 2.0, "GPU": 1.0}, attached=False)


@pytest.mark.parametrize("key", ["\f", "a\nb", "\u2028", "\x1c"])
def test_a_line_break_in_a_key_stays_on_the_one_error_line(tmp_path, capsys, no_ray, key):
    """Found by test_space_fuzz: a key "\\f" split the message in two for str.splitlines."""
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(dict(VALID, scheduler={"type": "asha", key: None})))
    assert main(["validate", "--space", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"spa-tune: error: {path}: scheduler.") and "Extra inputs" in err, err
