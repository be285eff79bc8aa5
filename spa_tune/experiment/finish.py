"""The end of an experiment: results table, Pareto front and plot, parent-run artifacts, summary."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpaTuneError
from ..layout import RESULTS_FILE
from ..report.command import write_experiment_report
from ..report.figures import save_pareto_plot
from ..report.results import completed_front, rows_from_trials, sorted_rows, write_results_csv
from ..spec.space import SpaceSpec
from ..storage import END_FILES, START_FILES
from ..text_table import format_table
from ..tracking.mlflow_runs import ExperimentRuns, finish_parent_run, trial_run_link
from .folder import save_beside_trials, tune_experiment_path
from .outcome import mark_diverged

log = logging.getLogger("spa_tune.sheet")
TABLE_COLUMNS = ("trial_id", "method", "density", "em", "f1", "remaining_pct", "learned_pct", "step", "status")


@dataclass
class ExperimentOutcome:
    """What a finished (or stopped) experiment left behind."""

    folder: Path
    runs: ExperimentRuns
    rows: list[dict]
    front: list[dict]
    results_csv: Path
    pareto_png: Path


def front_axes(spec: SpaceSpec) -> tuple[str, str]:
    """Axes of the Pareto front: F1 against the size objective (remaining % unless Optuna says so)."""
    metrics = spec.searcher.metrics
    if spec.searcher.type == "optuna" and len(metrics) > 1:
        size = next((m for m in metrics if m != "f1"), "remaining_pct")
        return size, "f1"
    return "remaining_pct", "f1"


def summary_metrics(rows: list[dict]) -> dict[str, float]:
    """Counts and the best F1, logged on the parent run."""
    f1s = [float(r["f1"]) for r in rows if r.get("f1") is not None]
    summary = {
        "trials": len(rows),
        "trials_completed": sum(r["status"] == "completed" for r in rows),
        "trials_stopped_early": sum(r["status"] == "stopped_early" for r in rows),
        "trials_failed": sum(r["status"] == "failed" for r in rows),
    }
    if f1s:
        summary["best_f1"] = max(f1s)
    return summary


def finish_experiment(spec: SpaceSpec, folder: Path, runs: ExperimentRuns, plan=None) -> ExperimentOutcome:
    """Write ``results.csv``, ``pareto.png`` and the report (``report.md``, ``pareto_learned.png``), log
    them on the parent run and print the summary.

    Trials are read back from the state Tune saved in the experiment folder, with their status.
    Trials of sheet rows (``plan``) carry their origin; with write-back their rows are written.
    """
    from ray.tune import ExperimentAnalysis

    searched = list(spec.search) or (plan.varying_keys() if plan else [])
    trials = ExperimentAnalysis(tune_experiment_path(spec, folder)).trials
    rows = rows_from_trials(trials, spec.trial, searched, spec.scheduler.stratify_keys or None, plan)
    rows = sorted_rows([mark_diverged(row, trial, trial.status) for row, trial in zip(rows, trials)])
    x, y = front_axes(spec)
    front = completed_front(rows, x=x, y=y)
    results_csv = write_results_csv(rows, folder / RESULTS_FILE)
    pareto_png = save_pareto_plot(rows, front, folder / "pareto.png", x=x, y=y)
    unfinished = [r for r in rows if r["status"] == "unfinished"]
    report_files = write_experiment_report(spec.name, rows, searched, folder)  # report.md, pareto_learned.png
    finish_parent_run(
        runs, [results_csv, pareto_png, *report_files], summary_metrics(rows), status="KILLED" if unfinished else "FINISHED"
    )
    try:  # a copy beside the trials: `spa-tune report/export <storage_path>/<name>` from the bucket
        save_beside_trials(spec, folder, START_FILES + END_FILES)
    except SpaTuneError as err:
        log.warning("results not copied to %s (they are in %s): %s", tune_experiment_path(spec, folder), folder, err)
    try:  # last, so a sheet problem cannot cost the results table, the plot or the parent run
        sheet_file = write_back_all(folder, runs, rows)
    except Exception as err:
        log.warning("could not write the results into the sheet (they are in %s): %s", results_csv, err)
        sheet_file = None
    outcome = ExperimentOutcome(folder, runs, rows, front, results_csv, pareto_png)
    print_summary(outcome, spec, searched, x, y)
    if sheet_file is not None:
        print(f"sheet results:     {sheet_file}", file=sys.stdout, flush=True)
    return outcome


def write_back_all(folder: Path, runs: ExperimentRuns, rows: list[dict]) -> Path | None:
    """Write every finished sheet trial into its row once more (idempotent); the file written, or None."""
    from ..sheet.outcome import load_writer, row_result, save_writer

    writer = load_writer(folder)
    if writer is None:
        return None
    results = []
    for row in rows:
        link = trial_run_link(runs, row["trial_id"]) if row.get("sheet_row") not in (None, "") else None
        result = row_result(row, link)
        if result is not None:
            results.append(result)
    written = writer.write(results)
    save_writer(folder, writer)
    return written


def print_summary(outcome: ExperimentOutcome, spec: SpaceSpec, searched: list[str], x: str, y: str) -> None:
    """The table sorted by F1 within density, the Pareto front and where everything lives."""
    out = sys.stdout
    origin = ["sheet_row"] if any(r.get("sheet_row") not in (None, "") for r in outcome.rows) else []
    columns = [TABLE_COLUMNS[0], *origin, *TABLE_COLUMNS[1:3]] + [k for k in searched if k not in TABLE_COLUMNS] + list(TABLE_COLUMNS[3:])
    print(f"\nspa-tune: experiment {spec.name}: {len(outcome.rows)} trials (sorted by F1 within density)", file=out)
    print(format_table(outcome.rows, columns), file=out)
    print(f"\nPareto front ({y} against {x}, completed trials):", file=out)
    print(format_table(outcome.front, ["trial_id", "method", x, y]), file=out)
    print(f"\nexperiment folder: {outcome.folder}", file=out)
    if tune_experiment_path(spec, outcome.folder) != str(outcome.folder):
        print(f"trials, checkpoints: {tune_experiment_path(spec, outcome.folder)}", file=out)
    print(f"results:           {outcome.results_csv}  {outcome.pareto_png}", file=out)
    print(f"MLflow:            {outcome.runs.tracking_uri} (experiment {spec.mlflow.experiment_name or spec.name}, "
          f"parent run {outcome.runs.parent_run_id})", file=out)
    print(f"open the UI:       spa-tune ui {outcome.folder}", file=out)
    if any(r["status"] == "unfinished" for r in outcome.rows):
        print(f"unfinished trials: continue with `spa-tune resume {outcome.folder}`", file=out)
    out.flush()
