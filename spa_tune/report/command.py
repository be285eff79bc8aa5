"""``spa-tune report``, and the same report written into an experiment folder when it finishes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import SpaTuneError
from ..tracking.mlflow_runs import given_or_default_tracking_uri
from .collect import Source, collect, fixed_trial
from .combine import build_report
from .plots import PLOT_FILES, write_plots
from .render import FORMATS, render, render_markdown
from .seed_tables import SEED_GROUPS_FILE, write_seed_csv
from .seeds import with_config

REPORT_FILE = "report.md"


def plot_folder(plot_dir: str | Path) -> Path:
    """``--plot-dir`` as a folder that exists (created if needed)."""
    folder = Path(plot_dir).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SpaTuneError(f"--plot-dir: cannot create {folder}: {err.strerror or err}") from None
    if not folder.is_dir():
        raise SpaTuneError(f"--plot-dir: {folder} is not a folder")
    return folder.resolve()


def run_page(experiments: Sequence[str], out: str | Path | None, commands: Sequence[str] = (),
             untrained: bool = True) -> int:
    """``--format page``: the results page of finished experiment folders (``docs/results.md``), written to ``out``."""
    from .results_page import write_results_page  # scores the untrained model: torch and transformers

    if not out:
        raise SpaTuneError("--out: --format page writes a page; name its file (for example docs/results.md)")
    path = write_results_page(list(experiments), Path(out).expanduser(), list(commands), untrained=untrained)
    print(f"spa-tune: wrote {path} and {path.with_name(f'{path.stem}-f1-size.png')}", flush=True)
    return 0


def run_report(experiments: Sequence[str], fmt: str = "table", tracking_uri: str | None = None,
               plot_dir: str | Path = ".") -> int:
    """Print the report of ``experiments`` (folders or MLflow names) in ``fmt`` and write both plots.

    With ``csv``, the seed groups go to ``seed_groups.csv`` beside the plots (its header alone when no
    setting ran with several seeds), since stdout holds the trial table only. Everything is checked
    before anything is written: the format, the plot folder, each experiment.
    """
    if fmt not in FORMATS:
        raise SpaTuneError(f"--format: unknown format {fmt!r} (one of {', '.join((*FORMATS, 'page'))})")
    uri = given_or_default_tracking_uri(tracking_uri)
    report = build_report([collect(argument, uri) for argument in experiments])
    folder = plot_folder(plot_dir)  # created only once every experiment was found
    try:
        plots = {name: str(path) for name, path in write_plots(report, folder).items()}
        seeds = write_seed_csv(report.seed_groups, folder / SEED_GROUPS_FILE) if fmt == "csv" else None
    except OSError as err:
        raise SpaTuneError(f"--plot-dir: cannot write the plots into {folder}: {err.strerror or err}") from None
    print(render(report, fmt, plots), flush=True)
    if fmt in ("csv", "json"):  # stdout stays machine-readable
        print(f"spa-tune: plots: {'  '.join(plots.values())}", file=sys.stderr, flush=True)
    if seeds is not None:
        print(f"spa-tune: seed groups: {seeds}", file=sys.stderr, flush=True)
    return 0


def write_experiment_report(label: str, rows: list[dict], searched: Sequence[str], folder: Path) -> list[Path]:
    """At an experiment's end: ``report.md`` and ``pareto_learned.png`` in its folder; the paths written.

    ``pareto.png`` is drawn by the experiment itself (its front may use a search objective); the
    Markdown links both plots, which sit beside it. The seed groups take the fixed trial values from
    the folder's saved space file.
    """
    rows = with_config(rows, fixed_trial(folder), searched)
    report = build_report([Source(label, rows, list(searched))])
    learned = write_plots(report, folder, fronts=("learned",))[PLOT_FILES["learned"]]
    links = {name: name for name in PLOT_FILES.values()}
    markdown = folder / REPORT_FILE
    markdown.write_text(render_markdown(report, links))
    return [markdown, learned]
