"""``spa-tune report``: its forms, both Pareto fronts, several experiments, MLflow names, bad input.

Everything reads the one finished tiny experiment of the session (``finished_experiment``: a
fine-pruning and a SPLoPA trial); experiments to combine with it are copies of its folder.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import socket
from pathlib import Path

import pytest

from spa_tune.cli import main
from spa_tune.report.collect import Source, collect
from spa_tune.report.combine import build_report, unique_labels
from spa_tune.report.plots import PLOT_FILES
from spa_tune.report.render import render_markdown, render_table
from spa_tune.report.results import pareto_front
from spa_tune.report.values import parse_value
from tests.conftest import FINISHED_NAME

FRONT_HEADINGS = ("## Pareto front: F1 against remaining %", "## Pareto front: F1 against learned %")


def run_report(capsys, *args):
    code = main(["report", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def results_table(folder: Path) -> dict[str, dict]:
    with open(folder / "results.csv") as fh:
        return {line["trial_id"]: line for line in csv.DictReader(fh)}


def tracking_uri(folder: Path) -> str:
    return json.loads((folder / "experiment.json").read_text())["tracking_uri"]


def copy_experiment(folder: Path, to: Path, f1: dict[str, float] | None = None) -> Path:
    """A copy of an experiment folder (same MLflow store); ``f1`` rewrites results.csv by method."""
    copy = shutil.copytree(folder, to, ignore=shutil.ignore_patterns("trial_*", "mlartifacts", "mlflow.db"))
    if f1 is not None:
        with open(folder / "results.csv") as fh:
            lines = list(csv.DictReader(fh))
        for line in lines:
            line["trial_id"] = "copy_" + line["trial_id"]
            line["f1"] = str(f1[line["method"]])
        with open(copy / "results.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(lines[0]))
            writer.writeheader()
            writer.writerows(lines)
    return Path(copy)


def test_table_shows_the_trials_both_fronts_and_writes_both_plots(capsys, finished_experiment, tmp_path):
    code, out, err = run_report(capsys, finished_experiment, "--plot-dir", tmp_path / "plots")
    assert code == 0, err
    assert out.splitlines()[0] == f"spa-tune report: 2 trials of {FINISHED_NAME}"
    assert out.splitlines()[1].split() == ["trial_id", "method", "em", "f1", "remaining_pct", "learned_pct",
                                           "learned_params", "status"]
    for trial_id in results_table(finished_experiment):
        assert trial_id in out
    assert "Pareto front: F1 against remaining %" in out and "Pareto front: F1 against learned %" in out
    plots = [tmp_path / "plots" / "pareto.png", tmp_path / "plots" / "pareto_learned.png"]
    assert out.strip().splitlines()[-1] == f"plots: {plots[0]}  {plots[1]}"
    assert all(path.stat().st_size > 10_000 for path in plots)


def test_plots_go_to_the_working_folder_by_default(capsys, finished_experiment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_report(capsys, finished_experiment)[0] == 0
    assert {p.name for p in tmp_path.iterdir()} == {"pareto.png", "pareto_learned.png"}


def test_csv_is_the_trial_table(capsys, finished_experiment, tmp_path):
    code, out, err = run_report(capsys, finished_experiment, "--format", "csv", "--plot-dir", tmp_path)
    assert code == 0
    lines = list(csv.DictReader(io.StringIO(out)))
    expected = results_table(finished_experiment)
    assert {line["trial_id"] for line in lines} == set(expected)
    for line in lines:
        want = expected[line["trial_id"]]
        assert (line["method"], line["status"]) == (want["method"], want["status"])
        for key in ("em", "f1", "remaining_pct", "learned_pct", "learned_params"):
            assert float(line[key]) == float(want[key]), key
    assert err.strip().splitlines() == [f"spa-tune: plots: {tmp_path / 'pareto.png'}  {tmp_path / 'pareto_learned.png'}",
                                        f"spa-tune: seed groups: {tmp_path / 'seed_groups.csv'}"]
    seeds = (tmp_path / "seed_groups.csv").read_text().splitlines()
    assert len(seeds) == 1 and seeds[0].startswith("method,n,seeds,em_mean,em_sd,")  # header only: no repeats


def test_json_has_the_trials_and_both_fronts(capsys, finished_experiment, tmp_path):
    code, out, _ = run_report(capsys, finished_experiment, "--format", "json", "--plot-dir", tmp_path)
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"trials", "pareto_remaining", "pareto_learned", "seed_groups"}
    assert data["seed_groups"] == []  # each setting ran with one seed
    assert sorted(t["method"] for t in data["trials"]) == ["fine-pruning", "splopa"]
    completed = [t for t in data["trials"] if t["status"] == "completed"]
    assert data["pareto_remaining"] == pareto_front(completed, x="remaining_pct", y="f1")
    assert data["pareto_learned"] == pareto_front(completed, x="learned_pct", y="f1")


def test_learned_front_favours_the_trial_that_learns_least(capsys, finished_experiment, tmp_path):
    data = json.loads(run_report(capsys, finished_experiment, "--format", "json", "--plot-dir", tmp_path)[1])
    least = min(data["trials"], key=lambda t: t["learned_pct"])
    assert least["method"] == "splopa"  # prototypes and positions, not the remaining weights themselves
    assert least in data["pareto_learned"]
    fine = next(t for t in data["trials"] if t["method"] == "fine-pruning")
    assert fine["learned_pct"] == pytest.approx(fine["remaining_pct"])  # fine-pruning learns what remains


def test_fronts_over_remaining_and_learned_differ():
    rows = [
        {"trial_id": "fp", "method": "fine-pruning", "f1": 80.0, "remaining_pct": 30.0, "learned_pct": 30.0, "status": "completed"},
        {"trial_id": "sp", "method": "splopa", "f1": 78.0, "remaining_pct": 30.0, "learned_pct": 5.0, "status": "completed"},
        {"trial_id": "st", "method": "splopa", "f1": 90.0, "remaining_pct": 10.0, "learned_pct": 1.0, "status": "stopped_early"},
    ]
    report = build_report([Source("x", rows, [])])
    assert [r["trial_id"] for r in report.fronts["remaining"]] == ["fp"]  # stopped trials do not count
    assert [r["trial_id"] for r in report.fronts["learned"]] == ["sp", "fp"]
    only_stopped = build_report([Source("x", rows[2:], [])])
    assert [r["trial_id"] for r in only_stopped.fronts["learned"]] == ["st"]  # nothing completed: all trials
    assert "Pareto front: F1 against learned % (all trials, none completed):" in render_table(only_stopped)


def test_markdown_has_headed_tables_of_the_trials_and_both_fronts(capsys, finished_experiment, tmp_path):
    code, out, _ = run_report(capsys, finished_experiment, "--format", "markdown", "--plot-dir", tmp_path)
    assert code == 0
    assert out.startswith(f"# spa-tune report: {FINISHED_NAME}\n")
    headings = [line for line in out.splitlines() if line.startswith("## ")]
    assert headings[:3] == ["## Trials", *(h + " (completed trials)" for h in FRONT_HEADINGS)]
    assert "| trial_id | method | em | f1 |" in out
    assert f"![F1 against learned %]({tmp_path / 'pareto_learned.png'})" in out


def test_the_experiment_logged_the_same_markdown_and_the_learned_plot(finished_experiment):
    report = build_report([collect(str(finished_experiment), "unused")])
    expected = render_markdown(report, {name: name for name in PLOT_FILES.values()})
    assert (finished_experiment / "report.md").read_text() == expected
    assert (finished_experiment / "pareto_learned.png").stat().st_size > 10_000


def test_two_experiments_make_one_table_and_one_front(capsys, finished_experiment, tmp_path):
    second = copy_experiment(finished_experiment, tmp_path / "second", f1={"fine-pruning": 1.0, "splopa": 99.0})
    code, out, _ = run_report(capsys, finished_experiment, second, "--format", "json", "--plot-dir", tmp_path)
    assert code == 0
    data = json.loads(out)
    assert [t["experiment"] for t in data["trials"]] == [FINISHED_NAME] * 2 + ["second"] * 2
    assert data["trials"][2]["trial_id"].startswith("copy_") and data["trials"][2]["f1"] == 99.0  # best first
    # the copied SPLoPA trial has the best F1 at the same remaining % and the least learned %
    assert [(t["experiment"], t["method"]) for t in data["pareto_remaining"]] == [("second", "splopa")]
    assert [(t["experiment"], t["method"]) for t in data["pareto_learned"]] == [("second", "splopa")]
    table = run_report(capsys, finished_experiment, second, "--plot-dir", tmp_path)[1]
    assert table.splitlines()[0] == f"spa-tune report: 4 trials of {FINISHED_NAME}, second"
    assert table.splitlines()[1].split()[:3] == ["experiment", "trial_id", "method"]


def test_an_mlflow_name_gives_the_final_values_of_its_trial_runs(capsys, finished_experiment, tmp_path):
    uri = tracking_uri(finished_experiment)
    code, out, err = run_report(capsys, FINISHED_NAME, "--tracking-uri", uri, "--format", "json", "--plot-dir", tmp_path)
    assert code == 0, err
    trials = json.loads(out)["trials"]
    expected = results_table(finished_experiment)
    assert {t["trial_id"] for t in trials} == set(expected)
    for trial in trials:
        line = expected[trial["trial_id"]]
        assert trial["method"] == line["method"] and trial["status"] == line["status"] == "completed"
        for key in ("em", "f1", "remaining_pct", "learned_pct", "learned_params"):
            assert trial[key] == pytest.approx(float(line[key])), key
    assert "experiment" not in trials[0]  # a single experiment needs no column
    assert list(trials[0]) == ["trial_id", "method", "em", "f1", "remaining_pct", "learned_pct", "learned_params", "status",
                               "trial_folder", "run_id"]


def test_the_tracking_uri_defaults_to_the_environment(capsys, finished_experiment, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri(finished_experiment))
    code, out, _ = run_report(capsys, FINISHED_NAME, "--format", "csv", "--plot-dir", tmp_path)
    assert code == 0 and len(out.strip().splitlines()) == 3


def test_a_folder_and_an_mlflow_name_combine(capsys, finished_experiment, tmp_path):
    second = copy_experiment(finished_experiment, tmp_path / "second", f1={"fine-pruning": 1.0, "splopa": 2.0})
    uri = tracking_uri(finished_experiment)
    code, out, _ = run_report(capsys, second, FINISHED_NAME, "--tracking-uri", uri, "--format", "csv", "--plot-dir", tmp_path)
    assert code == 0
    lines = list(csv.DictReader(io.StringIO(out)))
    assert [line["experiment"] for line in lines] == ["second"] * 2 + [FINISHED_NAME] * 2


def test_a_folder_without_results_reads_its_mlflow_runs(capsys, finished_experiment, tmp_path):
    running = copy_experiment(finished_experiment, tmp_path / "running")
    (running / "results.csv").unlink()  # as while the experiment runs
    code, out, _ = run_report(capsys, running, "--format", "json", "--plot-dir", tmp_path)
    assert code == 0
    trials = json.loads(out)["trials"]
    expected = results_table(finished_experiment)
    assert {t["trial_id"] for t in trials} == set(expected)
    for trial in trials:
        assert trial["f1"] == pytest.approx(float(expected[trial["trial_id"]]["f1"]))
        assert trial["status"] == expected[trial["trial_id"]]["status"]


def test_same_name_twice_gets_distinct_labels():
    sources = [Source("a", [], []), Source("a", [], [], origin="mlflow"), Source("a", [], []), Source("b", [], [])]
    assert unique_labels(sources) == ["a (folder)", "a (mlflow)", "a (folder) #2", "b"]


def test_cells_are_read_back_as_numbers():
    assert [parse_value(v) for v in ("0.5", "12", "", "None", "1e-07", "topK", "12345_00001", "final_threshold=0.5")] == [
        0.5, 12, None, None, 1e-07, "topK", "12345_00001", "final_threshold=0.5"]


def assert_one_line_error(capsys, args, *fragments):
    code, out, err = run_report(capsys, *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spa-tune: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_bad_input_is_one_line_and_exit_code_2(capsys, finished_experiment, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert_one_line_error(capsys, ["no-such-experiment"], "no-such-experiment", "sqlite:///")
    assert not (tmp_path / "mlflow.db").exists()  # a missing store is not created by asking it
    uri = tracking_uri(finished_experiment)
    assert_one_line_error(capsys, [finished_experiment, "other-name", "--tracking-uri", uri], "other-name", uri)
    assert_one_line_error(capsys, [finished_experiment, "--format", "yaml"], "--format", "'yaml'")
    server = f"http://127.0.0.1:{free_port()}"
    assert_one_line_error(capsys, ["some-name", "--tracking-uri", server], "some-name", server, "unreachable")
    broken = copy_experiment(finished_experiment, tmp_path / "broken")
    (broken / "results.csv").write_bytes(b"trial_id,f1\n\xff\xfe\x00\x01\n")
    assert_one_line_error(capsys, [broken], str(broken / "results.csv"), "unreadable")
    (broken / "results.csv").write_text("a,b\n1,2\n")
    assert_one_line_error(capsys, [broken], str(broken / "results.csv"), "no trial_id")
    (broken / "experiment.json").unlink()
    assert_one_line_error(capsys, [broken], str(broken))
    assert_one_line_error(capsys, [finished_experiment, "--plot-dir", broken / "space.yaml"], "--plot-dir")
    assert not any(tmp_path.glob("*.png"))  # nothing written for bad input
