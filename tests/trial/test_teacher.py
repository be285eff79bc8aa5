"""A finished dense trial as teacher or starting model: by trial, checkpoint or experiment folder, or MLflow run id.

One short dense tiny-BERT trial is trained per module; experiment folders around it are written by
hand (results.csv and trial folders linking to its checkpoint), as is the MLflow store of the run-id
test. The session's finished experiment (fine-pruning and SPLoPA, no dense trial) gives real
non-dense trials, by folder and by run id.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from spa_tune.cli import main
from spa_tune.config import validate_trial_config
from spa_tune.errors import SpaTuneError
from spa_tune.export.source import load_trained
from spa_tune.model.loading import load_qa_model
from spa_tune.spec.load import load_space
from spa_tune.trial import run_trial
from spa_tune.trial.checkpoint import CONFIG_FILE, STATE_FILE
from spa_tune.trial.locate import newest_checkpoint, trained_checkpoint, trained_model_problem
from spa_tune.trial.setup import build_trial
from spa_tune.trial.teacher import (
    clear_teacher_cache,
    load_teacher,
    load_trained_qa_model,
    teacher_loads,
    tokenizer_name,
)

SMALL = dict(
    dataset="generated", generated_train_questions=64, generated_eval_questions=16, max_seq_length=64, doc_stride=16,
    max_query_length=32, per_gpu_train_batch_size=8, per_gpu_eval_batch_size=64,
)


@pytest.fixture(scope="module")
def dense_trial(tiny_model_dir, tmp_path_factory) -> Path:
    """Trial folder of a dense tiny BERT trained for 6 steps (its weights differ from the untrained model)."""
    folder = tmp_path_factory.mktemp("teacher") / "dense"
    run_trial(dict(SMALL, model=tiny_model_dir, method="dense", max_steps=6, learning_rate=3e-3,
                   keep_checkpoints=1, output_dir=str(folder)))
    return folder


@pytest.fixture(autouse=True)
def _fresh_teacher_cache():
    clear_teacher_cache()
    yield
    clear_teacher_cache()


def write_trial(folder: Path, checkpoint: Path, **config) -> Path:
    """A trial folder whose checkpoint links to ``checkpoint``'s weights, its config changed by ``config``."""
    target = folder / checkpoint.name
    target.mkdir(parents=True)
    (target / STATE_FILE).symlink_to(checkpoint / STATE_FILE)
    values = json.loads((checkpoint / CONFIG_FILE).read_text())
    (target / CONFIG_FILE).write_text(json.dumps({**values, **config}))
    return folder


def write_experiment(folder: Path, trials: dict[str, tuple[str, float, str]], checkpoint: Path) -> Path:
    """An experiment folder: ``results.csv`` with one row per trial id (method, f1, status), trial folders."""
    folder.mkdir(parents=True)
    (folder / "experiment.json").write_text("{}")
    with open(folder / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["trial_id", "method", "pruning_method", "f1", "status"])
        writer.writeheader()
        for trial_id, (method, f1, status) in trials.items():
            writer.writerow({"trial_id": trial_id, "method": method, "f1": f1, "status": status,
                             "pruning_method": "" if method == "dense" else "topK"})
            write_trial(folder / f"trial_{trial_id}", checkpoint, method=method)
    return folder


def logits(model, seed: int = 0) -> torch.Tensor:
    """Start logits of a fixed random batch."""
    ids = torch.randint(0, 1000, (2, 16), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.eval()(input_ids=ids, attention_mask=torch.ones_like(ids)).start_logits


def test_teacher_from_trial_folder_is_the_trained_dense_model(dense_trial, tiny_model_dir):
    checkpoint = newest_checkpoint(dense_trial)
    trained = load_trained(checkpoint).model  # export's rebuild of the same trial
    teacher = load_teacher(str(dense_trial), "cpu")
    assert torch.equal(logits(teacher), logits(trained))
    assert not torch.equal(logits(teacher), logits(load_qa_model(tiny_model_dir)))  # trained, not the start
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    out = teacher(input_ids=torch.ones(1, 8, dtype=torch.long))
    assert not out.start_logits.requires_grad
    # by checkpoint folder: the same checkpoint, the same (cached) model
    assert load_teacher(str(checkpoint), "cpu") is teacher
    assert teacher_loads() == 1


def test_teacher_loaded_once_per_process_and_random_state_untouched(dense_trial, tiny_model_dir, tmp_path):
    experiment = write_experiment(tmp_path / "exp", {"a": ("dense", 50.0, "completed")}, newest_checkpoint(dense_trial))
    config = dict(SMALL, model=tiny_model_dir, method="fine-pruning", max_steps=2, teacher_type="bert")
    names = [str(dense_trial), str(newest_checkpoint(dense_trial)), str(experiment)]
    states, setups = [], []
    for i, teacher in enumerate(names):
        cfg = validate_trial_config(dict(config, teacher_name_or_path=teacher, output_dir=str(tmp_path / f"t{i}")))
        setups.append(build_trial(cfg))
        states.append((torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()))
    # trial folder and its checkpoint folder: one checkpoint, loaded once; the experiment's best dense
    # trial links to the same weights but is another checkpoint folder, so it is loaded again
    assert setups[0].teacher is setups[1].teacher and setups[2].teacher is not setups[0].teacher
    assert teacher_loads() == 2
    assert torch.equal(logits(setups[2].teacher), logits(setups[0].teacher))
    # whether the teacher was loaded or cached, the trial's random state after setup is the same
    for state in states[1:]:
        assert torch.equal(state[0], states[0][0]) and np.array_equal(state[1], states[0][1]) and state[2] == states[0][2]


def test_one_teacher_in_a_worker_loads_once(dense_trial, tiny_model_dir, tmp_path):
    """Trials one after another in one process (Ray's reuse_actors) share the teacher: one load."""
    spy = []
    import spa_tune.trial.teacher as teacher_module

    original = teacher_module._load_checkpoint_model
    try:
        teacher_module._load_checkpoint_model = lambda *a: spy.append(a) or original(*a)
        finals = [
            run_trial(dict(SMALL, model=tiny_model_dir, method="fine-pruning", max_steps=2, teacher_type="bert",
                           teacher_name_or_path=str(dense_trial), alpha_ce=0.0, alpha_distil=1.0,
                           output_dir=str(tmp_path / f"run{i}")))
            for i in range(2)
        ]
    finally:
        teacher_module._load_checkpoint_model = original
    assert len(spy) == 1 and teacher_loads() == 1
    assert finals[0]["loss"] == finals[1]["loss"] and finals[0]["step"] == 2


def test_experiment_folder_names_its_best_completed_dense_trial(dense_trial, tmp_path):
    checkpoint = newest_checkpoint(dense_trial)
    experiment = write_experiment(tmp_path / "exp", {
        "low": ("dense", 40.0, "completed"),
        "best": ("dense", 60.0, "completed"),
        "pruned": ("fine-pruning", 90.0, "completed"),
        "stopped": ("dense", 95.0, "stopped_early"),
        "failed": ("dense", float("nan"), "failed"),
    }, checkpoint)
    assert trained_checkpoint(str(experiment)) == experiment / "trial_best" / checkpoint.name
    assert trained_model_problem(str(experiment)) is None
    teacher = load_teacher(str(experiment), "cpu")
    assert torch.equal(logits(teacher), logits(load_trained(checkpoint).model))


def test_distil_from_an_experiment_folder(dense_trial, tiny_model_dir, tmp_path):
    experiment = write_experiment(tmp_path / "exp", {"a": ("dense", 50.0, "completed")}, newest_checkpoint(dense_trial))
    config = dict(SMALL, model=tiny_model_dir, method="fine-pruning", max_steps=2, output_dir=str(tmp_path / "plain"))
    plain = run_trial(config)
    distilled = run_trial(dict(config, teacher_type="bert", teacher_name_or_path=str(experiment), alpha_ce=0.0,
                               alpha_distil=1.0, output_dir=str(tmp_path / "distil")))
    assert distilled["step"] == 2 and distilled["loss"] != plain["loss"]


def test_dense_trial_as_starting_weights_and_teacher_resumes_exactly(dense_trial, tiny_model_dir, tmp_path):
    checkpoint = newest_checkpoint(dense_trial)
    start = load_trained_qa_model(str(dense_trial))  # a fresh copy, trainable
    assert all(p.requires_grad for p in start.parameters()) and start is not load_trained_qa_model(str(dense_trial))
    assert torch.equal(logits(start), logits(load_trained(checkpoint).model))
    assert tokenizer_name(str(dense_trial)) == tiny_model_dir  # no config.json in a trial: the base model's
    assert tokenizer_name(str(dense_trial), "minilm") == "minilm"

    config = dict(SMALL, model=str(dense_trial), method="fine-pruning", final_threshold=0.5, warmup_steps=1,
                  max_steps=4, eval_every=2, keep_checkpoints=3, output_dir=str(tmp_path / "full"))
    setup = build_trial(validate_trial_config(dict(config, output_dir=str(tmp_path / "setup"))))
    config.update(teacher_type="bert", teacher_name_or_path=str(dense_trial))  # the resumed run finds it cached
    dense_state = torch.load(checkpoint / STATE_FILE, weights_only=False)["model"]
    assert torch.equal(setup.model.qa_outputs.weight, dense_state["qa_outputs.weight"])  # the trained head
    assert setup.tokenizer.vocab_size == 30522 and setup.teacher is None
    full = []
    run_trial(config, report=lambda m, c: full.append((m, c)))
    resumed = []
    run_trial(dict(config, output_dir=str(tmp_path / "resumed")), report=lambda m, c: resumed.append(m),
              resume_from=full[0][1])
    assert [m["step"] for m, _ in full] == [2, 4] and [m["step"] for m in resumed] == [4]
    assert (resumed[-1]["loss"], resumed[-1]["f1"]) == (full[-1][0]["loss"], full[-1][0]["f1"])
    assert teacher_loads() == 1


def test_non_dense_missing_and_unusable_teachers_are_one_line(dense_trial, tmp_path):
    checkpoint = newest_checkpoint(dense_trial)
    pruned = write_trial(tmp_path / "pruned", checkpoint, method="fine-pruning")
    (tmp_path / "empty").mkdir()
    no_dense = write_experiment(tmp_path / "exp", {"p": ("splopa", 70.0, "completed"),
                                                   "d": ("dense", 80.0, "stopped_early")}, checkpoint)
    cases = {
        str(pruned): f"teacher_name_or_path: {pruned}: trial is method fine-pruning, not a dense QA model",
        str(tmp_path / "missing"): f"teacher_name_or_path: no model folder at '{tmp_path / 'missing'}'",
        str(tmp_path / "empty"): "teacher_name_or_path: model folder '" + str(tmp_path / "empty")
        + "' has no config.json and is no spa-tune trial, checkpoint or experiment folder",
        str(no_dense): f"teacher_name_or_path: {no_dense}: experiment has no completed dense trial "
                     "(its trials: 1 dense stopped_early, 1 splopa completed)",
    }
    for name, message in cases.items():
        with pytest.raises(SpaTuneError) as err:
            load_teacher(name, "cpu")
        assert str(err.value) == message and "\n" not in message
        assert trained_model_problem(name) == message.removeprefix("teacher_name_or_path: ")
    with pytest.raises(SpaTuneError, match=r"^model: .*pruned: trial is method fine-pruning, not a dense QA model$"):
        load_trained_qa_model(str(pruned))
    truncated = write_trial(tmp_path / "truncated", checkpoint)
    (truncated / checkpoint.name / STATE_FILE).unlink()
    (truncated / checkpoint.name / STATE_FILE).write_bytes(b"PK\x03")
    with pytest.raises(SpaTuneError, match=r"^teacher_name_or_path: .*truncated/checkpoint_\d+/trial_state.pt: "
                                           r"cannot load the trial's model \([^\n]*\)$"):
        load_teacher(str(truncated), "cpu")
    assert teacher_loads() == 2  # only the missing folder and the truncated file got as far as a load


def test_spa_tune_train_refuses_a_pruned_teacher_before_the_trial(capsys, dense_trial, tiny_model_dir, tmp_path):
    pruned = write_trial(tmp_path / "pruned", newest_checkpoint(dense_trial), method="splopa")
    out = tmp_path / "out"
    assert main(["train", "--quiet", "--set", f"model={tiny_model_dir}", "--set", f"teacher_name_or_path={pruned}",
                 "--set", f"output_dir={out}"]) == 2
    err = capsys.readouterr().err
    assert err == f"spa-tune: error: --set: teacher_name_or_path: {pruned}: trial is method splopa, not a dense QA model\n"
    assert not out.exists()


# --- MLflow run ids --------------------------------------------------------------------------------

def hand_made_store(uri: str, experiment: Path, trial_id: str) -> str:
    """An MLflow store with a parent run pointing at ``experiment`` and one trial run; the trial run's id."""
    from mlflow.tracking import MlflowClient

    from spa_tune.tracking.mlflow_runs import TUNE_PATH_TAG

    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("earlier")
    parent = client.create_run(experiment_id, tags={TUNE_PATH_TAG: str(experiment)})
    child = client.create_run(experiment_id, tags={"mlflow.parentRunId": parent.info.run_id, "trial_id": trial_id})
    return child.info.run_id


def test_distil_from_a_run_id(capsys, dense_trial, tiny_model_dir, tmp_path, monkeypatch):
    experiment = tmp_path / "earlier"
    experiment.mkdir()
    shutil.copytree(dense_trial, experiment / "trial_d1", ignore=shutil.ignore_patterns("generated-data"))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = hand_made_store(uri, experiment, "d1")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert trained_checkpoint(run_id) == newest_checkpoint(experiment / "trial_d1")
    # a space file's run id is looked up on the driver and becomes the trial folder (trials run anywhere)
    space = tmp_path / "s.yaml"
    space.write_text(yaml.safe_dump({"name": "x", "trial": {"model": tiny_model_dir, "teacher_name_or_path": run_id},
                                     "scheduler": {"type": "none"}, "storage_path": str(tmp_path / "runs")}))
    assert load_space(space).trial["teacher_name_or_path"] == str((experiment / "trial_d1").resolve())
    assert torch.equal(logits(load_teacher(run_id, "cpu")), logits(load_trained(newest_checkpoint(dense_trial)).model))
    out = tmp_path / "student"
    assert main(["train", "--quiet", "--set", f"model={tiny_model_dir}", "--set", f"teacher_name_or_path={run_id}",
                 "--set", "teacher_type=bert", *[f"--set={k}={v}" for k, v in SMALL.items()], "--set", "max_steps=2",
                 "--set", f"output_dir={out}"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["step"] == 2


def test_run_id_and_experiment_of_the_finished_experiment_are_refused(finished_experiment, monkeypatch, tmp_path):
    """The session's experiment has fine-pruning and SPLoPA trials only: no teacher by folder or by run id."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{finished_experiment / 'mlflow.db'}"
    state = json.loads((finished_experiment / "experiment.json").read_text())
    runs = MlflowClient(tracking_uri=uri).search_runs(
        [state["experiment_id"]], filter_string=f"tags.`mlflow.parentRunId` = '{state['parent_run_id']}'")
    by_method = {run.data.tags["method"]: run.info.run_id for run in runs}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert trained_model_problem(by_method["splopa"]) == f"{by_method['splopa']}: trial is method splopa, not a dense QA model"
    assert trained_model_problem(str(finished_experiment)) == (
        f"{finished_experiment}: experiment has no completed dense trial "
        "(its trials: 1 fine-pruning completed, 1 splopa completed)")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)  # no mlflow.db here
    with pytest.raises(SpaTuneError, match=r"^teacher_name_or_path: [0-9a-f]{32}: no MLflow store at sqlite:///.*mlflow.db "
                                           r"\(set MLFLOW_TRACKING_URI, or name the trial folder\)$"):
        load_teacher("0" * 32, "cpu")
