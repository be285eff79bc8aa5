"""The report's two plots: F1 against remaining % (``pareto.png``) and against learned % (``pareto_learned.png``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from .combine import FRONTS, Report
from .figures import pareto_figure

PLOT_FILES = {"remaining": "pareto.png", "learned": "pareto_learned.png"}
X_LABELS = {
    "remaining_pct": "remaining encoder weights (%)",
    "learned_pct": "learned parameters (% of encoder weights)",
}


def write_plot(report: Report, front: str, path: Path) -> Path:
    """Draw the trials and the front ``front`` (remaining or learned) into the PNG ``path``."""
    x = FRONTS[front]
    figure = pareto_figure(report.rows, report.fronts[front], x=x, y="f1")
    figure.axes[0].set_xlabel(X_LABELS[x])
    try:
        figure.savefig(path, dpi=120)
    finally:
        plt.close(figure)
    return path


def write_plots(report: Report, folder: Path, fronts: tuple[str, ...] = tuple(PLOT_FILES)) -> dict[str, Path]:
    """Write the plots of ``fronts`` into ``folder``; file name -> path written."""
    return {PLOT_FILES[name]: write_plot(report, name, folder / PLOT_FILES[name]) for name in fronts}
