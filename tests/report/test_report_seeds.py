"""``spa-tune report`` and the results page on a real tiny experiment whose trials differ only in ``seed``.

``seeded`` is a grid over ``seed`` (1, 2) with everything else as in the session's finished
experiment's fine-pruning trial (seed 42), so the two experiments together repeat that setting
with three seeds; the SPLoPA trial stays a single seed.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import statistics
from pathlib import Path

import pytest

from spa_tune.cli import main
from spa_tune.report.results_page import write_results_page
from tests.conftest import FINISHED_NAME

SEEDED_NAME = "seeded-tiny"


@pytest.fixture(scope="module")
def seeded(ray_runtime, tmp_path_factory, tiny_model_dir) -> Path:
    """A finished tiny experiment: two fine-pruning trials, seeds 1 and 2 (``method`` in the trial section)."""
    from spa_tune.experiment.run import run_experiment
    from spa_tune.spec.load import load_space
    from tests.experiment.conftest import write_space

    path = write_space(
        tmp_path_factory.mktemp("seeded"), tiny_model_dir, SEEDED_NAME,
        trial={"num_train_epochs": 2, "method": "fine-pruning"},
        search={"seed": {"type": "grid", "values": [1, 2]}},
        searcher={"type": "grid"}, scheduler={"type": "none"}, resources={"cpu": 1, "gpu": 0},
        max_concurrent_trials=2,
    )
    outcome = run_experiment(load_space(path), str(path))
    assert sorted(row["seed"] for row in outcome.rows) == [1, 2]
    assert all(row["status"] == "completed" for row in outcome.rows), outcome.rows
    return outcome.folder


def report(capsys, *args) -> tuple[str, str]:
    code = main(["report", *map(str, args)])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out, out.err


def f1_values(*folders: Path, method: str = "fine-pruning") -> dict[str, float]:
    values = {}
    for folder in folders:
        with open(folder / "results.csv") as fh:
            values.update({line["trial_id"]: float(line["f1"]) for line in csv.DictReader(fh) if line["method"] == method})
    return values


def test_trials_that_differ_only_in_seed_make_one_group(capsys, seeded, tmp_path):
    data = json.loads(report(capsys, seeded, "--format", "json", "--plot-dir", tmp_path)[0])
    [group] = data["seed_groups"]
    f1 = f1_values(seeded)
    assert group["setting"] == {"method": "fine-pruning"} and group["n"] == 2 and group["seeds"] == [1, 2]
    assert sorted(group["trial_ids"]) == sorted(f1) and group["experiments"] == [SEEDED_NAME]
    assert group["f1"]["mean"] == pytest.approx(statistics.fmean(f1.values()))
    assert group["f1"]["sd"] == pytest.approx(statistics.stdev(f1.values()))
    assert (group["f1"]["min"], group["f1"]["max"]) == (min(f1.values()), max(f1.values()))
    assert len(data["pareto_remaining"]) >= 1 and "seed" in data["pareto_remaining"][0]  # fronts: single trials


def test_two_experiments_group_across_folders_by_their_whole_configuration(capsys, seeded, finished_experiment, tmp_path):
    out, err = report(capsys, finished_experiment, seeded, "--format", "csv", "--plot-dir", tmp_path)
    assert len(list(csv.DictReader(io.StringIO(out)))) == 4  # stdout: the trial table alone
    assert err.strip().splitlines()[-1] == f"spa-tune: seed groups: {tmp_path / 'seed_groups.csv'}"
    [line] = list(csv.DictReader((tmp_path / "seed_groups.csv").open()))
    f1 = f1_values(seeded, finished_experiment)  # method searched in one, fixed in the other: same setting
    assert line["method"] == "fine-pruning" and line["n"] == "3" and line["seeds"] == "1 2 42"
    assert line["experiments"] == f"{FINISHED_NAME} {SEEDED_NAME}"
    assert float(line["f1_mean"]) == pytest.approx(statistics.fmean(f1.values()))
    assert float(line["f1_sd"]) == pytest.approx(statistics.stdev(f1.values()))
    table = report(capsys, finished_experiment, seeded, "--plot-dir", tmp_path)[0]
    assert "Seed groups: 1 setting ran with several seeds" in table
    assert any(row.split()[:3] == ["fine-pruning", "3", "1,"] for row in table.splitlines())  # splopa: one seed


def test_an_mlflow_name_groups_by_the_logged_params(capsys, seeded, tmp_path):
    uri = json.loads((seeded / "experiment.json").read_text())["tracking_uri"]
    data = json.loads(report(capsys, SEEDED_NAME, "--tracking-uri", uri, "--format", "json", "--plot-dir", tmp_path)[0])
    [group] = data["seed_groups"]
    assert group["seeds"] == [1, 2] and group["f1"]["mean"] == pytest.approx(statistics.fmean(f1_values(seeded).values()))


def test_markdown_and_the_experiments_own_report_have_the_section(capsys, seeded, tmp_path):
    out = report(capsys, seeded, "--format", "markdown", "--plot-dir", tmp_path)[0]
    headings = [line for line in out.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Trials", "## Seed groups"]
    assert "## Seed groups" in (seeded / "report.md").read_text()  # written when the experiment ended


def test_results_page_shows_the_seed_spread(seeded, tmp_path):
    folder = Path(shutil.copytree(seeded, tmp_path / "exp"))
    text = write_results_page(folder, tmp_path / "results.md", "spa-tune --space seeds.yaml", untrained=False).read_text()
    assert "run-to-run noise at this scale" in text
    row = next(line for line in text.splitlines() if line.startswith("| fine-pruning, movement (topK) | keep 0.5 | 2 |"))
    mean = statistics.fmean(f1_values(seeded).values())
    assert "| 1, 2 |" in row and f"{mean:.1f} ± " in row
    assert text.index("| method | setting | remaining % |") < text.index("Seed spread:")  # beside the trial table
