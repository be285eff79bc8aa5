"""The results page of a finished experiment: its table, learned-parameter ratio, plot, baseline and versions."""

from __future__ import annotations

import shutil

import pytest

from spa_tune.cli import main
from spa_tune.report.results_page import learned_ratio, trial_label, trial_setting, write_results_page


def test_page_of_a_finished_experiment(finished_experiment, tmp_path):
    folder = tmp_path / "exp"
    shutil.copytree(finished_experiment, folder)
    page = write_results_page(folder, tmp_path / "out" / "results.md", "spa-tune --space x.yaml")
    text = page.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| method | setting | remaining % | learned params |")  # one experiment: no exp column
    assert [r.split(" | ")[0] for r in rows[1:]] == ["| fine-pruning, movement (topK)", "| SPLoPA, movement (topK)"]
    splopa = rows[2].split(" | ")
    ratio = float(splopa[5].rstrip(" %"))
    assert 0 < ratio < 100  # SPLoPA learns a fraction of what fine-pruning learns
    assert "CPU " in splopa[10] and splopa[9].endswith(" min")  # the MLflow run's hardware tag and clock
    assert "Untrained (" in text and "F1 " in text
    assert "`spa-tune --space x.yaml`" in text and "Versions: python " in text
    assert "Seed spread: no setting here ran with more than one seed" in text  # one seed each: no spread claimed
    assert (tmp_path / "out" / "results-f1-size.png").is_file()


def test_page_of_two_experiments_numbers_them(finished_experiment, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        shutil.copytree(finished_experiment, folder)
    page = write_results_page([first, second], tmp_path / "results.md", ["cmd one", "cmd two"], untrained=False)
    text = page.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| exp | method |") and len(rows) == 1 + 4
    assert sorted(r.split(" | ")[0] for r in rows[1:]) == ["| 1", "| 1", "| 2", "| 2"]
    assert "- command (exp 1): `cmd one`" in text and "- command (exp 2): `cmd two`" in text
    assert "`first`, `second`" in text and "Untrained" not in text
    assert "Seed spread: no setting" in text  # the copies rerun the same seed: not a seed spread


def test_the_page_is_a_report_format(finished_experiment, tmp_path, capsys):
    folder = tmp_path / "exp"
    shutil.copytree(finished_experiment, folder)
    out = tmp_path / "docs" / "results.md"
    assert main(["report", str(folder), "--format", "page", "--out", str(out), "--command", "make it",
                 "--no-untrained"]) == 0
    text = out.read_text()
    assert "Written by `spa-tune report --format page`" in text and "- command: `make it`" in text
    assert (tmp_path / "docs" / "results-f1-size.png").is_file() and str(out) in capsys.readouterr().out


@pytest.mark.parametrize("args,fragment", [
    (["--format", "page"], "--out: --format page writes a page"),
    (["--format", "page", "--out", "{tmp}/r.md"], "no results.csv"),
    (["--out", "{tmp}/r.md"], "--out, --command and --no-untrained: only with --format page"),
])
def test_bad_page_requests_are_one_line_errors(tmp_path, capsys, args, fragment):
    assert main(["report", str(tmp_path), *[a.format(tmp=tmp_path) for a in args]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and not (tmp_path / "r.md").exists()


@pytest.mark.parametrize("row,label", [
    ({"method": "dense"}, "dense fine-tuning"),
    ({"method": "fine-pruning", "pruning_method": "sigmoied_threshold"}, "fine-pruning, soft movement"),
    ({"method": "splopa", "pruning_method": "topK"}, "SPLoPA, movement (topK)"),
])
def test_labels(row, label):
    assert trial_label(row) == label


def test_setting_and_ratio():
    trial = {"final_threshold": 0.12, "splopa_prototype_rank": 2, "num_splopa_prototypes": 8}
    fp = {"method": "fine-pruning", "pruning_method": "topK", "learned_pct": 12.0, "remaining_pct": 12.0}
    sp = {"method": "splopa", "pruning_method": "topK", "learned_pct": 0.48, "remaining_pct": 12.0}
    soft = {"method": "splopa", "pruning_method": "sigmoied_threshold", "final_lambda": 150}
    assert trial_setting(fp, trial) == "keep 0.12"
    assert trial_setting(sp, trial) == "keep 0.12, K=8 r=2"
    assert trial_setting(soft, {**trial, "pruning_method": "topK"}) == "lambda 150, K=8 r=2"
    targeted = {**soft, "target_remaining_pct": 30, "seed": 7}
    assert trial_setting(targeted, {**trial, "seed": 42}) == "target 30 %, lambda 150, K=8 r=2, seed 7"
    assert trial_setting({**fp, "target_remaining_pct": 50.0}, trial) == "target 50 %"
    assert learned_ratio(sp) == pytest.approx(0.04)  # fine-pruning at 12 % learns 12 %
    assert learned_ratio(soft) is None  # no metrics
    assert learned_ratio(fp) is None


def test_learning_rates_shown_where_a_row_differs():
    trial = {"learning_rate": 1e-4, "adapter_learning_rate": 1e-2}
    probe = {"method": "splopa", "pruning_method": "sigmoied_threshold", "final_lambda": 150,
             "learning_rate": 1e-3, "adapter_learning_rate": 3e-2, "learned_params": 50, "remaining_pct": 13.0}
    plain = {**probe, "learning_rate": 1e-4, "adapter_learning_rate": 1e-2}
    assert trial_setting(probe, trial) == "lambda 150, K=64 r=1, lr 0.001, adapter lr 0.03"  # K, r: defaults
    assert trial_setting(plain, trial) == "lambda 150, K=64 r=1"
