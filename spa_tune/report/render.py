"""The forms of a report: terminal table, CSV (the trial table), JSON, and Markdown (``report.md``).

The seed groups (trials identical but for ``seed``) follow the trial table in the terminal and
Markdown forms when there are any; JSON always has ``seed_groups``; with CSV they go to a file of
their own (``seed_tables.write_seed_csv``), since stdout holds one table.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence

from ..errors import SpaTuneError
from ..text_table import cell_text, format_table
from .combine import Report
from .seed_tables import SEED_NOTE, display_table, group_record
from .values import json_value

FORMATS = ("table", "csv", "json", "markdown")
FRONT_TITLES = {"remaining": "Pareto front: F1 against remaining %", "learned": "Pareto front: F1 against learned %"}
PLOT_TITLES = {"pareto.png": "F1 against remaining %", "pareto_learned.png": "F1 against learned %"}


def heading(report: Report) -> str:
    """``N trials of A, B``."""
    return f"{len(report.rows)} trials of {', '.join(report.labels)}"


def front_title(report: Report, name: str) -> str:
    """Title of the front ``name``, saying which trials it was taken over."""
    completed = any(row.get("status") == "completed" for row in report.rows)
    return f"{FRONT_TITLES[name]} ({'completed trials' if completed else 'all trials, none completed'})"


def render_table(report: Report, plots: Mapping[str, str] | None = None) -> str:
    """The trial table, both fronts and where the plots are, as plain text for a terminal."""
    parts = [f"spa-tune report: {heading(report)}", format_table(report.rows, report.columns)]
    if report.seed_groups:
        rows, columns = display_table(report.seed_groups)
        count = f"{len(report.seed_groups)} setting{'s' if len(report.seed_groups) > 1 else ''}"
        parts.append(f"\nSeed groups: {count} ran with several seeds, all else identical "
                     f"(completed trials, mean ± sample sd):\n{format_table(rows, columns)}")
    for name in FRONT_TITLES:
        front = report.fronts[name]
        table = format_table(front, report.columns) if front else "(no trial has F1 and this size)"
        parts.append(f"\n{front_title(report, name)}:\n{table}")
    if plots:
        parts.append("\nplots: " + "  ".join(plots.values()))
    return "\n".join(parts)


def render_csv(report: Report) -> str:
    """The trial table as CSV (values unrounded), with each trial's folder and MLflow run id."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=report.record_columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.rows)
    return out.getvalue().rstrip("\n")


def _records(rows: Sequence[dict], columns: Sequence[str]) -> list[dict]:
    return [{c: json_value(row.get(c)) for c in columns} for row in rows]


def render_json(report: Report) -> str:
    """``{"trials": [...], "pareto_remaining": [...], "pareto_learned": [...], "seed_groups": [...]}``:
    rows with the table's columns, and the seed groups with at least two seeds (``group_record``)."""
    data = {"trials": _records(report.rows, report.record_columns)}
    data.update({f"pareto_{name}": _records(report.fronts[name], report.record_columns) for name in FRONT_TITLES})
    data["seed_groups"] = [group_record(group) for group in report.seed_groups]
    return json.dumps(data, indent=2)


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A Markdown (GitHub) table; ``|`` in a cell is escaped."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    body = [line([cell_text(row.get(c)) for c in columns]) for row in rows]
    return "\n".join([line(list(columns)), line(["---"] * len(columns)), *body])


def render_markdown(report: Report, plots: Mapping[str, str] | None = None) -> str:
    """Headed sections: the trials, the seed groups (if any), the front over remaining %, the front over
    learned %, the plots."""
    parts = [f"# spa-tune report: {', '.join(report.labels)}", f"## Trials\n\n{len(report.rows)} trials.\n\n"
             + markdown_table(report.rows, report.columns)]
    if report.seed_groups:
        rows, columns = display_table(report.seed_groups)
        parts.append(f"## Seed groups\n\n{SEED_NOTE}\n\n{markdown_table(rows, columns)}")
    for name in FRONT_TITLES:
        front = report.fronts[name]
        table = markdown_table(front, report.columns) if front else "No trial has F1 and this size."
        parts.append(f"## {front_title(report, name)}\n\n{table}")
    if plots:
        links = [f"![{PLOT_TITLES.get(name, name)}]({path})" for name, path in plots.items()]
        parts.append("## Plots\n\n" + "\n\n".join(links))
    return "\n\n".join(parts) + "\n"


def render(report: Report, fmt: str, plots: Mapping[str, str] | None = None) -> str:
    """The report in ``fmt`` (table, csv, json or markdown)."""
    if fmt == "table":
        return render_table(report, plots)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report, plots)
    raise SpaTuneError(f"--format: unknown format {fmt!r} (one of {', '.join(FORMATS)})")
