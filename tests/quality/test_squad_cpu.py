"""``search_spaces/squad_teacher.yaml`` and ``squad_cpu.yaml`` (what ``make quality`` runs): they validate,
they ask for the study (a dense teacher in three seeds; both methods, both pruning methods, two target
densities, distilling from that teacher; a seed spread), and a tiny slice of both runs through the
normal experiment path on the shared SQuAD subsets (skipped when ``../shared/data`` is not beside the
project)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from spa_tune.config import TrialConfig
from spa_tune.data.generate import write_generated_squad
from spa_tune.spec.load import load_space

ROOT = Path(__file__).resolve().parents[2]
SPACE = ROOT / "search_spaces" / "squad_cpu.yaml"
TEACHER_SPACE = ROOT / "search_spaces" / "squad_teacher.yaml"
SHARED = ROOT.parent / "shared" / "data" / "squad-v1.1"
HAVE_SHARED = (SHARED / "train-subset.json").is_file() and (SHARED / "dev-subset.json").is_file()


def _trials(spec) -> list[TrialConfig]:
    return [TrialConfig(**{**spec.trial, **point}) for point in spec.searcher.points_to_evaluate]


def _data_overrides(tmp_path) -> list[str]:
    if HAVE_SHARED:
        return []
    train, dev = write_generated_squad(tmp_path, 20, 10, seed=1)  # the rest of the files still have to validate
    return [f"trial.train_file={train}", f"trial.eval_file={dev}"]


def test_the_teacher_is_one_dense_setting_in_three_seeds(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)  # data paths are relative to the project folder
    spec = load_space(TEACHER_SPACE, _data_overrides(tmp_path))
    assert spec.trial["method"] == "dense" and spec.search["seed"].values == [42, 7, 13]
    # the three seeds at once, one thread each, on two cores
    assert spec.scheduler.type == "none" and spec.max_concurrent_trials == 3 and 3 * spec.resources.cpu <= 2


def test_the_study_compares_both_methods_at_two_targets_with_a_seed_spread(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    spec = load_space(SPACE, _data_overrides(tmp_path))
    assert spec.num_samples == len(spec.searcher.points_to_evaluate) == 12  # the points are the trials
    assert spec.scheduler.type == "none" and spec.resources.cpu == 1 and spec.max_concurrent_trials == 2
    trials = _trials(spec)
    first_seed = {(t.method, t.pruning_method, t.target_remaining_pct) for t in trials if t.seed == 42}
    assert first_seed == {(m, p, d) for m in ("fine-pruning", "splopa") for p in ("topK", "sigmoied_threshold")
                          for d in (50, 30)}
    spread = sorted((t.method, t.seed) for t in trials if (t.pruning_method, t.target_remaining_pct) == ("topK", 50))
    assert spread == [("fine-pruning", 7), ("fine-pruning", 13), ("fine-pruning", 42),
                      ("splopa", 7), ("splopa", 13), ("splopa", 42)]
    for t in trials:
        assert t.model == "minilm" and t.max_train_articles and t.max_eval_articles and t.alpha_distil > 0
        if t.pruning_method == "sigmoied_threshold":
            assert t.regularization == "l1" and t.final_lambda > 0
    teacher = load_space(TEACHER_SPACE, _data_overrides(tmp_path)).trial
    for key in ("model", "train_file", "max_train_articles", "max_seq_length", "doc_stride", "num_train_epochs"):
        assert spec.trial[key] == teacher[key], key  # the same data and length as the teacher
    if HAVE_SHARED:
        assert Path(spec.trial["train_file"]) == SHARED / "train-subset.json"


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_SHARED, reason="../shared/data/squad-v1.1 is not beside the project")
def test_a_tiny_slice_runs_as_the_two_experiments(ray_runtime, tiny_model_dir, monkeypatch, tmp_path):
    from spa_tune.experiment.run import run_experiment
    from spa_tune.report.results_page import write_results_page

    monkeypatch.chdir(ROOT)
    slice_ = [
        f"storage_path={tmp_path / 'runs'}", f"trial.model={tiny_model_dir}",
        "trial.max_train_articles=2", "trial.max_train_samples=40", "trial.max_eval_articles=1",
        "trial.max_eval_samples=12", "trial.max_steps=4", "trial.warmup_steps=1",
    ]
    teacher = run_experiment(load_space(TEACHER_SPACE, [*slice_, "name=teacher-slice"]), str(TEACHER_SPACE))
    assert len(teacher.rows) == 3 and all(row["status"] == "completed" for row in teacher.rows), teacher.rows
    students = [f"trial.teacher_name_or_path={teacher.folder}", f"trial.model={teacher.folder}"]  # as make quality
    spec = load_space(SPACE, [*slice_, "name=squad-cpu-slice", *students])
    outcome = run_experiment(spec, str(SPACE))
    assert len(outcome.rows) == 12 and all(row["status"] == "completed" for row in outcome.rows), outcome.rows
    assert all(row["step"] == 4 for row in outcome.rows)
    folder = outcome.folder
    assert {"results.csv", "pareto.png", "mlflow.db"} <= {p.name for p in folder.iterdir()}

    page = write_results_page([folder, teacher.folder], tmp_path / "docs" / "results.md", "make quality")
    text = page.read_text()
    assert "dense fine-tuning" in text and "SPLoPA, soft movement" in text
    assert "Untrained (the pretrained" in text and "`make quality`" in text
    assert f"torch {importlib.metadata.version('torch')}" in text
    assert (tmp_path / "docs" / "results-f1-size.png").stat().st_size > 10_000
