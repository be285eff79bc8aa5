"""``search_spaces/squad_cpu.yaml`` (what ``make quality`` runs): it validates, it asks for the paper's
comparison at one target density, and a tiny slice of it runs through the normal experiment path on
the shared SQuAD subsets (skipped when ``../shared/data`` is not beside the project)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from spa_tune.config import TrialConfig
from spa_tune.data.generate import write_generated_squad
from spa_tune.spec.load import load_space

ROOT = Path(__file__).resolve().parents[2]
SPACE = ROOT / "search_spaces" / "squad_cpu.yaml"
SHARED = ROOT.parent / "shared" / "data" / "squad-v1.1"
HAVE_SHARED = (SHARED / "train-subset.json").is_file() and (SHARED / "dev-subset.json").is_file()


def _trials(spec) -> list[TrialConfig]:
    return [TrialConfig(**{**spec.trial, **point}) for point in spec.searcher.points_to_evaluate]


def test_validates_and_asks_for_the_comparison(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)  # its data paths are relative to the project folder
    overrides = []
    if not HAVE_SHARED:  # the rest of the file still has to validate
        train, dev = write_generated_squad(tmp_path, 20, 10, seed=1)
        overrides = [f"trial.train_file={train}", f"trial.eval_file={dev}"]
    spec = load_space(SPACE, overrides)
    assert spec.num_samples == len(spec.searcher.points_to_evaluate) == 7  # the points are the trials
    assert spec.scheduler.type == "none" and spec.resources.cpu == 1 and spec.max_concurrent_trials == 2
    trials = _trials(spec)
    kinds = sorted((t.method, t.pruning_method if t.masked else "") for t in trials)
    assert kinds == [("dense", ""), ("fine-pruning", "sigmoied_threshold"), ("fine-pruning", "sigmoied_threshold"),
                     ("fine-pruning", "topK"), ("splopa", "sigmoied_threshold"), ("splopa", "sigmoied_threshold"),
                     ("splopa", "topK")]
    for t in trials:
        assert t.model == "minilm" and t.max_train_articles and t.max_eval_articles
        if t.masked and t.pruning_method == "topK":
            assert 0.10 <= t.final_threshold <= 0.15  # the target density
        if t.masked and t.pruning_method == "sigmoied_threshold":
            assert t.regularization == "l1" and t.final_lambda > 0
    if HAVE_SHARED:
        assert Path(spec.trial["train_file"]) == SHARED / "train-subset.json"


@pytest.mark.skipif(not HAVE_SHARED, reason="../shared/data/squad-v1.1 is not beside the project")
def test_a_tiny_slice_runs_as_an_experiment(ray_runtime, tiny_model_dir, monkeypatch, tmp_path):
    from spa_tune.experiment.run import run_experiment
    from spa_tune.report.results_page import write_results_page

    monkeypatch.chdir(ROOT)
    slice_ = [
        f"storage_path={tmp_path / 'runs'}", "name=squad-cpu-slice", f"trial.model={tiny_model_dir}",
        "trial.max_train_articles=2", "trial.max_train_samples=40", "trial.max_eval_articles=1",
        "trial.max_eval_samples=12", "trial.max_steps=4", "trial.warmup_steps=1",
    ]
    spec = load_space(SPACE, slice_)
    outcome = run_experiment(spec, str(SPACE))
    assert len(outcome.rows) == 7 and all(row["status"] == "completed" for row in outcome.rows), outcome.rows
    assert all(row["step"] == 4 for row in outcome.rows)
    folder = outcome.folder
    assert {"results.csv", "pareto.png", "mlflow.db"} <= {p.name for p in folder.iterdir()}

    page = write_results_page(folder, tmp_path / "docs" / "results.md", "make quality")
    text = page.read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(table) == 1 + 7  # header and one line per trial
    assert table[1].startswith("| dense fine-tuning |")
    assert sum("SPLoPA, soft movement" in line for line in table) == 2
    assert all("CPU " in line and " min |" in line for line in table[1:])  # hardware and wall time
    assert "Untrained (the pretrained" in text and "`make quality`" in text
    assert f"torch {importlib.metadata.version('torch')}" in text
    assert (tmp_path / "docs" / "results-f1-size.png").stat().st_size > 10_000
