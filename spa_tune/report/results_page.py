"""A results page (``docs/results.md``) written from one finished experiment, numbers and all.

The table comes from the experiment's ``results.csv`` and its MLflow trial runs (wall time, the
``hardware`` tag); settings run with several seeds get their mean and spread beside it; the
untrained model is scored on the same evaluation set; the plot is drawn from the same rows; the
command and library versions are recorded. Nothing on the page is typed in.

Written by ``spa-tune report runs/<experiment> [...] --format page --out docs/results.md --command "..."``: the
report's own Markdown table and the figure code of ``figures.py``.
"""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ..errors import SpaTuneError
from ..layout import SPACE_FILE, STATE_FILE
from ..tracking.mlflow_runs import TRIAL_ID_TAG
from ..trial_values import default_of, trial_config, trial_values, with_defaults
from .collect import RESULTS_FILE, mlflow_query, read_results_csv, read_state, tracking_client
from .figures import size_figure
from .render import markdown_table
from .runs import child_runs
from .seed_tables import page_lines
from .seeds import repeated_groups
from .values import number

PRUNING_LABELS = {"topK": "movement (topK)", "sigmoied_threshold": "soft movement", "magnitude": "magnitude",
                  "l0": "L0", "threshold": "threshold"}
PACKAGES = ("spa-tune", "torch", "transformers", "datasets", "ray", "mlflow", "optuna")
COLUMNS = ("exp", "method", "setting", "remaining %", "learned params", "learned %", "learned / fine-pruning's",
           "EM", "F1", "steps", "wall time", "hardware", "status")


def trial_label(row: dict[str, Any]) -> str:
    """``dense``, ``fine-pruning, soft movement``, ``SPLoPA, movement (topK)``."""
    if row["method"] == "dense":
        return "dense fine-tuning"
    method = "SPLoPA" if row["method"] == "splopa" else row["method"]
    return f"{method}, {PRUNING_LABELS.get(row.get('pruning_method'), row.get('pruning_method'))}"


def row_values(row: dict[str, Any], trial: dict[str, Any]) -> dict[str, Any]:
    """A results row with its trial's settings: the defaults, the space file's trial section, then the row's values."""
    return with_defaults(trial_values(trial, {k: v for k, v in row.items() if v not in (None, "")}))


def trial_setting(row: dict[str, Any], trial: dict[str, Any]) -> str:
    """The settings that tell trials of one method apart: target density (else kept fraction or lambda),
    adapter size, and seed and learning rates where the row's differ from the space file's trial section."""
    values = row_values(row, trial)
    parts = []
    if row["method"] != "dense":
        if number(values.get("target_remaining_pct")) is not None:
            parts.append(f"target {_plain(values.get('target_remaining_pct'))} %")
            if values.get("pruning_method") not in ("topK", "magnitude") and number(values.get("final_lambda")):
                parts.append(f"lambda {_plain(values.get('final_lambda'))}")
        elif values.get("pruning_method") in ("topK", "magnitude"):
            parts.append(f"keep {_plain(values.get('final_threshold'))}")
        else:
            parts.append(f"lambda {_plain(values.get('final_lambda'))}")
    if row["method"] == "splopa":
        parts.append(f"K={values.get('num_splopa_prototypes')} r={values.get('splopa_prototype_rank')}")
    base = row_values({}, trial)
    if number(values.get("seed")) != number(base.get("seed")):
        parts.append(f"seed {_plain(values.get('seed'))}")
    for key, label in (("learning_rate", "lr"), ("adapter_learning_rate", "adapter lr")):
        if row["method"] != "dense" and (key != "adapter_learning_rate" or row["method"] == "splopa") \
                and number(values.get(key)) != number(base.get(key)):
            parts.append(f"{label} {_plain(values.get(key))}")
    return ", ".join(parts)


def run_details(folder: Path) -> dict[str, dict[str, Any]]:
    """Per trial id: its MLflow run's wall time (start to end, in seconds) and ``hardware`` tag."""
    state = read_state(folder / STATE_FILE)
    client = tracking_client(state["tracking_uri"], str(folder))
    details = {}
    runs = mlflow_query(lambda: child_runs(client, state["experiment_id"], state["parent_run_id"]), str(folder))
    for run in runs:
        trial_id = run.data.tags.get(TRIAL_ID_TAG)
        if trial_id:
            start, end = run.info.start_time, run.info.end_time
            details[trial_id] = {"wall_s": (end - start) / 1000 if start and end else None,
                                 "hardware": run.data.tags.get("hardware", "")}
    return details


def learned_ratio(row: dict[str, Any]) -> float | None:
    """A SPLoPA trial's learned parameters over those fine-pruning learns at the same remaining density.

    Fine-pruning learns exactly its remaining weights, so this is the trial's learned % over its remaining %.
    """
    learned, remaining = number(row.get("learned_pct")), number(row.get("remaining_pct"))
    if row["method"] != "splopa" or learned is None or not remaining:
        return None
    return learned / remaining


def table_rows(rows: Sequence[dict], details: dict[str, dict], trial: dict[str, Any]) -> list[dict[str, str]]:
    """The page's table, one line per trial, dense first, then by method and pruning method."""
    order = {"dense": 0, "fine-pruning": 1, "splopa": 2}
    lines = []
    for row in sorted(rows, key=lambda r: (order.get(r["method"], 3), str(r.get("pruning_method")), str(r["trial_id"]))):
        info = details.get(str(row["trial_id"]), {})
        ratio = learned_ratio(row)
        seconds = number(info.get("wall_s"))
        lines.append({
            "exp": str(row.get("experiment", "")),
            "method": trial_label(row),
            "setting": trial_setting(row, trial),
            "remaining %": _formatted(row.get("remaining_pct"), ".1f"),
            "learned params": _formatted(row.get("learned_params"), ",.0f"),
            "learned %": _formatted(row.get("learned_pct"), ".2f"),
            "learned / fine-pruning's": _formatted(None if ratio is None else 100 * ratio, ".1f", " %"),
            "EM": _formatted(row.get("em"), ".1f"),
            "F1": _formatted(row.get("f1"), ".1f"),
            "steps": _formatted(row.get("step"), ".0f"),
            "wall time": _formatted(None if seconds is None else seconds / 60, ".1f", " min"),
            "hardware": info.get("hardware", ""),
            "status": str(row.get("status", "")),
        })
    return lines


def _formatted(value: Any, spec: str, unit: str = "") -> str:
    """``value`` in the format ``spec`` followed by ``unit``; empty when it is not a finite number."""
    value = number(value)
    return "" if value is None else f"{value:{spec}}{unit}"


def untrained_scores(trial: dict[str, Any]) -> dict[str, Any]:
    """EM and F1 of the pretrained model with its new, untrained QA head on the experiment's evaluation set, and
    that model's name (for a trial that starts from a dense trial: that trial's own base model)."""
    from ..model.inject import prepare_model
    from ..model.loading import load_qa_model
    from ..trial.locate import base_model_name
    from ..trial.scoring import score_models
    from ..trial.setup import seed_everything

    with tempfile.TemporaryDirectory(prefix="spa-tune-untrained-") as tmp:
        # a trial that starts from a finished dense trial: the untrained model is that trial's base
        base = base_model_name(trial.get("model", default_of("model")))
        cfg = trial_config(trial, {}, method="dense", output_dir=tmp, device="cpu", target_remaining_pct=None,
                           model=base, source="trial section")
        seed_everything(cfg.seed)
        model = prepare_model(load_qa_model(cfg.model), cfg).eval()
        scores = score_models({"untrained": model}, cfg)["untrained"]
    return {"em": scores["em"], "f1": scores["f1"], "model": cfg.model}


def _plain(value: Any) -> str:
    """A number as short text (``150``, ``0.12``); anything else as it is."""
    return f"{number(value):g}" if number(value) is not None else str(value)


def versions() -> dict[str, str]:
    """Python, the libraries that shape the numbers, and the git commit of this checkout."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                                cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    found["spa-tune commit"] = commit or "unknown"
    return found


def scale_text(trial: dict[str, Any]) -> str:
    """The data and schedule of the trials, in one sentence."""
    trial = row_values({}, trial)
    articles = trial.get("max_train_articles")
    eval_articles = trial.get("max_eval_articles")
    return (
        f"model `{trial.get('model')}`; train: {f'the first {articles} articles of ' if articles else ''}"
        f"`{Path(str(trial.get('train_file') or trial.get('dataset'))).name}`; evaluation: "
        f"{f'the first {eval_articles} articles of ' if eval_articles else ''}"
        f"`{Path(str(trial.get('eval_file') or trial.get('dataset'))).name}`; sequence {trial.get('max_seq_length')}, "
        f"stride {trial.get('doc_stride')}, batch {trial.get('per_gpu_train_batch_size')}, "
        f"{_plain(trial.get('num_train_epochs'))} epoch(s)"
    )


def read_experiment(folder: Path) -> tuple[list[dict], dict[str, Any], dict[str, dict]]:
    """A finished experiment's results rows, its space file's trial section and its runs' details."""
    if not (folder / RESULTS_FILE).is_file():
        raise SpaTuneError(f"{folder}: no {RESULTS_FILE} (the experiment has not finished)")
    rows, _ = read_results_csv(folder / RESULTS_FILE)
    try:
        space = yaml.safe_load((folder / SPACE_FILE).read_text())
        trial = dict(space.get("trial") or {})
    except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError):
        raise SpaTuneError(f"{folder / SPACE_FILE}: unreadable space file") from None
    return rows, trial, run_details(folder)


def write_results_page(
    folders: str | Path | Sequence[str | Path], out: str | Path, commands: str | Sequence[str] = (),
    untrained: bool = True,
) -> Path:
    """Write the results page of one or more finished experiments to ``out`` (plot beside it); returns ``out``.

    ``commands`` are the commands that ran them, quoted on the page. With several experiments the
    table numbers them (``exp``) and the first one's trial section is the base that settings are
    told apart from and the untrained model is scored with.
    """
    folders = [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]
    commands = [commands] if isinstance(commands, str) else list(commands)
    out = Path(out)
    rows, details, trials = [], {}, []
    for index, folder in enumerate(folders, 1):
        exp_rows, trial, exp_details = read_experiment(folder)
        rows += [{**row_values(row, trial), "experiment": index} for row in exp_rows]
        details.update(exp_details)
        trials.append(trial)
    base = trials[0]
    columns = COLUMNS if len(folders) > 1 else COLUMNS[1:]
    lines = table_rows(rows, details, base)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot = size_figure(rows, lambda row: (trial_label(row), trial_setting(row, base)),
                       out.with_name(f"{out.stem}-f1-size.png"))
    baseline = untrained_scores(base) if untrained else None
    names = ", ".join(f"`{folder.name}`" for folder in folders)
    page = [
        f"# Quality on real SQuAD v1.1: {'experiments' if len(folders) > 1 else 'experiment'} {names}",
        "",
        "Written by `spa-tune report --format page` from the experiments' `results.csv` and MLflow "
        "runs; no number on this page was typed in.",
        "",
        *[f"- command{f' (exp {i})' if len(folders) > 1 else ''}: `{command}`" for i, command in enumerate(commands, 1)],
        f"- trials: {scale_text(base)}",
        f"- written: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, "
        f"machine: {platform.machine()}, {_cpu_count()} CPU cores",
        "",
        markdown_table(lines, columns),
        "",
        *page_lines(repeated_groups(rows), lambda config: (trial_label(config), trial_setting(config, base))),
    ]
    if baseline:
        page += [f"Untrained (the pretrained `{baseline['model']}` with a new QA head, no SQuAD training), "
                 f"same evaluation set: EM {baseline['em']:.1f}, F1 {baseline['f1']:.1f}.", ""]
    page += [
        "`learned / fine-pruning's`: a SPLoPA trial's learned parameters (prototypes and the position weights "
        "of kept blocks) over what fine-pruning learns at the same remaining density, which is the remaining "
        "weights themselves (learned % / remaining %). `wall time`: from the start of the trial's MLflow run to its end "
        "(model and data loading, training and evaluation).",
        "",
        f"![F1 against remaining and learned parameters]({plot.name})",
        "",
        "The experiments' own plots (`pareto.png`, `pareto_learned.png`), `results.csv` and MLflow runs "
        f"are in their folders under `runs/`; compare them with `spa-tune report {' '.join('runs/' + f.name for f in folders)}`.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        "",
    ]
    out.write_text("\n".join(page))
    return out


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
