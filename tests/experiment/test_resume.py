"""An experiment interrupted with Ctrl-C (SIGINT to the driver) and finished by ``spa-tune resume``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from spa_tune.cli import main

from .conftest import write_space


def last_steps(folder) -> dict:
    """Last evaluated step of every trial folder (from the trial's metrics.jsonl)."""
    steps = {}
    for log in folder.glob("trial_*/metrics.jsonl"):
        lines = log.read_text().splitlines()
        if lines:
            steps[log.parent.name] = json.loads(lines[-1])["step"]
    return steps


def interrupt_after_two_trials(space, folder) -> str:
    """Run ``spa-tune --space`` as its own process, Ctrl-C it once the second trial has reported; its output.

    The second trial only starts once Tune has recorded the first as finished.
    """
    driver = subprocess.Popen(
        [sys.executable, "-m", "spa_tune.cli", "--space", str(space)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        while len(last_steps(folder)) < 2 and time.time() < deadline and driver.poll() is None:
            time.sleep(0.2)
        assert len(last_steps(folder)) == 2, driver.communicate()[0][-3000:] if driver.poll() is not None else "slow"
        driver.send_signal(signal.SIGINT)
        output, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    return output


def test_interrupted_experiment_resumes_without_rerunning_finished_trials(ray_runtime, tmp_path, tiny_model_dir):
    space = write_space(
        tmp_path, tiny_model_dir, "interrupted",
        trial={"num_train_epochs": 6, "generated_train_questions": 640},
        search={"final_threshold": {"type": "grid", "values": [1.0, 0.5, 0.2]}},
        scheduler={"type": "none"},
        max_concurrent_trials=1,
    )
    folder = tmp_path / "runs" / "interrupted"
    output = interrupt_after_two_trials(space, folder)
    assert f"spa-tune resume {folder}" in output, output[-3000:]
    finished = [name for name, step in last_steps(folder).items() if step == 120]
    before = {name: (folder / name / "result.json").read_text() for name in finished}
    assert 1 <= len(before) < 3

    assert main(["resume", str(folder)]) == 0

    assert last_steps(folder) == {name: 120 for name in last_steps(folder)} and len(last_steps(folder)) == 3
    for name, text in before.items():
        assert (folder / name / "result.json").read_text() == text  # not run again
    records = [json.loads(p.read_text()) for p in folder.glob("trial_*/feature_cache.json")]
    # the first trial built the features; the restarted and later trials read them from the same cache
    assert len(records) == 3 and sorted(r["train"]["built"] for r in records) == [False, False, True]
    state = json.loads((folder / "experiment.json").read_text())
    client = MlflowClient(tracking_uri=state["tracking_uri"])
    children = client.search_runs(
        [state["experiment_id"]], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{state['parent_run_id']}'"
    )
    assert len(children) == 3
    for child in children:
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "f1")]
        assert steps == sorted(set(steps)) and steps[-1] == 120  # every evaluation once, to the end
        assert child.data.tags["status"] == "completed"
    results = (folder / "results.csv").read_text().splitlines()
    assert len(results) == 4 and all("completed" in line for line in results[1:])
    for trial_dir in folder.glob("trial_*"):  # the interrupted trial went on from its checkpoint
        reported = [json.loads(line)["step"] for line in (trial_dir / "result.json").read_text().splitlines()]
        assert reported == list(range(10, 121, 10)), (trial_dir.name, reported)
        logged = [json.loads(line)["step"] for line in (trial_dir / "metrics.jsonl").read_text().splitlines()]
        assert logged == reported  # the trial's own log kept its history across the restart
    parents = client.search_runs([state["experiment_id"]], filter_string="tags.`spa_tune.role` = 'experiment'")
    assert [p.info.run_id for p in parents] == [state["parent_run_id"]]
    assert parents[0].info.status == "FINISHED" and parents[0].data.metrics["trials_completed"] == 3


def test_interrupted_sheet_experiment_writes_back_in_place_and_resumes_the_same_rows(ray_runtime, tmp_path, tiny_model_dir):
    import openpyxl

    from ..sheet.sheets import NEW_LAYOUT, build_sheet

    rows = [(r, "D1", "topK_*", {"final_threshold": t}, "*") for r, t in ((3, 1.0), (4, 0.5), (5, 0.2))]
    sheet = build_sheet(tmp_path / "hp.xlsx", NEW_LAYOUT, rows)
    original = sheet.read_bytes()
    space = write_space(
        tmp_path, tiny_model_dir, "sheetresume",
        trial={"num_train_epochs": 6, "generated_train_questions": 640},
        scheduler={"type": "none"}, max_concurrent_trials=1,
        grid_from_sheet={"path": "hp.xlsx", "write_back": True, "in_place": True},
    )
    folder = tmp_path / "runs" / "sheetresume"
    output = interrupt_after_two_trials(space, folder)
    assert f"spa-tune resume {folder}" in output, output[-3000:]
    marker = lambda ws, r: ws.cell(r, NEW_LAYOUT.index("Marker") + 1).value  # noqa: E731
    ws = openpyxl.load_workbook(sheet)["Details - SQuAD"]
    assert marker(ws, 3).startswith("http://127.0.0.1:5000/#/experiments/")  # the finished row, written at once
    assert marker(ws, 4) == marker(ws, 5) == "*"
    (backup,) = tmp_path.glob("hp.backup-*.xlsx")
    assert backup.read_bytes() == original

    assert main(["resume", str(folder)]) == 0  # the * of row 3 is consumed; the saved plan still has 3 rows

    ws = openpyxl.load_workbook(sheet)["Details - SQuAD"]
    f1 = NEW_LAYOUT.index("F1") + 1
    results = {int(r["sheet_row"]): float(r["f1"]) for r in __import__("csv").DictReader(open(folder / "results.csv"))}
    assert sorted(results) == [3, 4, 5]
    for row in (3, 4, 5):
        assert ws.cell(row, f1).value == round(results[row], 4) and marker(ws, row).startswith("http")
    assert len(list(tmp_path.glob("hp.backup-*.xlsx"))) == 1 and not list(tmp_path.glob("hp.results*.xlsx"))


def tune_recorded_a_finished_trial(folder) -> bool:
    """Whether Ray Tune's saved experiment state holds a finished (TERMINATED) trial."""
    return any("TERMINATED" in path.read_text(errors="replace") for path in folder.glob("experiment_state-*.json"))


def kill_driver_after_two_trials(space, folder) -> None:
    """Run ``spa-tune --space`` as its own process and SIGKILL it (no clean-up of any kind) once the
    second trial has reported; then kill the local Ray it started and check nothing of it is left."""
    import psutil

    driver = subprocess.Popen(
        [sys.executable, "-m", "spa_tune.cli", "--space", str(space)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        while len(last_steps(folder)) < 2 and time.time() < deadline and driver.poll() is None:
            time.sleep(0.2)
        # Tune saves its state every few seconds: kill once it has recorded the first trial as finished
        while not tune_recorded_a_finished_trial(folder) and time.time() < deadline and driver.poll() is None:
            time.sleep(0.2)
        assert tune_recorded_a_finished_trial(folder) and driver.poll() is None, "the experiment ended before the kill"
        family = psutil.Process(driver.pid).children(recursive=True)  # its Ray runtime
        driver.kill()
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    for process in family:
        with __import__("contextlib").suppress(psutil.NoSuchProcess):
            process.kill()
    gone, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, f"processes of the killed driver still running: {alive}"


def test_killed_driver_is_resumed_with_optuna_and_sheet_write_back(ray_runtime, tmp_path, tiny_model_dir):
    import openpyxl
    import optuna

    from spa_tune.search.build import optuna_storage_url

    from ..sheet.sheets import NEW_LAYOUT, build_sheet

    rows = [(r, "D1", "topK_*", {"final_threshold": t}, "*") for r, t in ((3, 1.0), (4, 0.5))]
    build_sheet(tmp_path / "hp.xlsx", NEW_LAYOUT, rows)
    space = write_space(
        tmp_path, tiny_model_dir, "killed",
        trial={"num_train_epochs": 6, "generated_train_questions": 640},
        search={"final_threshold": {"type": "choice", "values": [0.2, 0.5, 1.0]}},
        searcher={"type": "optuna", "seed": 1}, num_samples=3, scheduler={"type": "none"}, max_concurrent_trials=1,
        grid_from_sheet={"path": "hp.xlsx", "write_back": True},
    )
    folder = tmp_path / "runs" / "killed"
    kill_driver_after_two_trials(space, folder)
    first = max(last_steps(folder).items(), key=lambda item: item[1])[0]  # the finished one got furthest
    first_results = (folder / first / "result.json").read_text()

    assert main(["resume", str(folder)]) == 0

    assert (folder / first / "result.json").read_text() == first_results  # the finished trial did not run again
    with open(folder / "results.csv") as fh:
        table = list(__import__("csv").DictReader(fh))
    assert len(table) == 3 and len({row["trial_id"] for row in table}) == 3
    assert all(row["status"] == "completed" for row in table)
    assert sorted(row["sheet_row"] for row in table) == ["", "3", "4"]
    study = optuna.load_study(study_name="killed", storage=optuna_storage_url(folder))
    assert len(study.trials) == 3 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    state = json.loads((folder / "experiment.json").read_text())
    client = MlflowClient(tracking_uri=state["tracking_uri"])
    parents = client.search_runs([state["experiment_id"]], filter_string="tags.`spa_tune.role` = 'experiment'")
    assert [p.info.run_id for p in parents] == [state["parent_run_id"]]
    assert parents[0].info.status == "FINISHED"
    children = client.search_runs([state["experiment_id"]], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{state['parent_run_id']}'")
    assert sorted(c.data.tags["trial_id"] for c in children) == sorted(row["trial_id"] for row in table)
    ws = openpyxl.load_workbook(tmp_path / "hp.results.xlsx")["Details - SQuAD"]
    f1 = NEW_LAYOUT.index("F1") + 1
    by_row = {int(row["sheet_row"]): float(row["f1"]) for row in table if row["sheet_row"]}
    for row in (3, 4):
        assert ws.cell(row, f1).value == round(by_row[row], 4)
