"""The report's two plots: F1 against remaining % (``pareto.png``) and against learned % (``pareto_learned.png``)."""

from __future__ import annotations

from pathlib import Path

from .combine import FRONTS, Report
from .figures import save_pareto_plot

PLOT_FILES = {"remaining": "pareto.png", "learned": "pareto_learned.png"}


def write_plot(report: Report, front: str, path: Path) -> Path:
    """Draw the trials and the front ``front`` (remaining or learned) into the PNG ``path``."""
    return save_pareto_plot(report.rows, report.fronts[front], path, x=FRONTS[front], y="f1")


def write_plots(report: Report, folder: Path, fronts: tuple[str, ...] = tuple(PLOT_FILES)) -> dict[str, Path]:
    """Write the plots of ``fronts`` into ``folder``; file name -> path written."""
    return {PLOT_FILES[name]: write_plot(report, name, folder / PLOT_FILES[name]) for name in fronts}
