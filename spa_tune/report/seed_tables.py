"""Seed groups as tables: text cells (mean ± sd), JSON records, a flat CSV, and the results page's section."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .seeds import GROUP_METRICS, SeedGroup, Spread
from .values import json_value

SEED_GROUPS_FILE = "seed_groups.csv"  # what `spa-tune report --format csv` writes beside the plots
SPREAD_FIELDS = ("mean", "sd", "min", "max")
SEED_NOTE = ("Completed trials whose configuration is identical except for `seed` (and keys that never change "
             "a result: output_dir, device, eval_every, keep_checkpoints, per_gpu_eval_batch_size); "
             "mean ± sample standard deviation over the seeds.")


def mean_sd_text(stats: Spread, spec: str | None = None) -> str:
    """``45.51 ± 0.83``; the mean alone when only one trial had the metric; empty when none had it.

    Without ``spec``, rounded as the trial table rounds: 2 decimals, 4 significant digits under 0.01.
    """
    if stats.mean is None:
        return ""
    if spec is None:
        spec = ".4g" if stats.mean and abs(stats.mean) < 1e-2 else ".2f"
    return f"{stats.mean:{spec}}" if stats.sd is None else f"{stats.mean:{spec}} ± {stats.sd:{spec}}"


def range_text(stats: Spread, spec: str = ".2f") -> str:
    """``44.60 - 46.20`` (min - max); empty when no trial had the metric."""
    return "" if stats.min is None else f"{stats.min:{spec}} - {stats.max:{spec}}"


def setting_keys(groups: Sequence[SeedGroup]) -> list[str]:
    """The setting keys of the groups, ``method`` first."""
    return list(dict.fromkeys(key for group in groups for key in group.setting))


def display_table(groups: Sequence[SeedGroup]) -> tuple[list[dict[str, str]], list[str]]:
    """Rows of text and their columns: the setting, n, seeds, EM, F1 (mean ± sd), F1's range, remaining %,
    learned % (mean ± sd); for the terminal and Markdown forms of the report."""
    keys = setting_keys(groups)
    rows = []
    for group in groups:
        row = {key: "" if group.setting.get(key) is None else str(group.setting[key]) for key in keys}
        row.update({"n": str(group.n), "seeds": ", ".join(map(str, group.seeds))})
        row.update({"em": mean_sd_text(group.stats["em"]), "f1": mean_sd_text(group.stats["f1"]),
                    "f1 range": range_text(group.stats["f1"]),
                    "remaining_pct": mean_sd_text(group.stats["remaining_pct"]),
                    "learned_pct": mean_sd_text(group.stats["learned_pct"])})
        rows.append(row)
    return rows, [*keys, "n", "seeds", "em", "f1", "f1 range", "remaining_pct", "learned_pct"]


def group_record(group: SeedGroup) -> dict[str, Any]:
    """One group for JSON: setting, n, seeds, trial ids, experiments, and per metric mean, sd, min, max."""
    record: dict[str, Any] = {"setting": json_value(group.setting), "n": group.n, "seeds": list(group.seeds),
                              "trial_ids": list(group.trial_ids), "experiments": list(group.experiments)}
    for metric in GROUP_METRICS:
        stats = group.stats[metric]
        record[metric] = json_value({name: getattr(stats, name) for name in SPREAD_FIELDS})
    return record


def csv_columns(groups: Sequence[SeedGroup]) -> list[str]:
    """Setting keys, n, seeds, then ``<metric>_mean``, ``_sd``, ``_min``, ``_max`` per metric, trial ids, experiments."""
    spreads = [f"{metric}_{name}" for metric in GROUP_METRICS for name in SPREAD_FIELDS]
    return [*(setting_keys(groups) or ["method"]), "n", "seeds", *spreads, "trial_ids", "experiments"]


def csv_row(group: SeedGroup) -> dict[str, Any]:
    """One group as a flat CSV line; lists are space-separated (seeds, trial ids, experiments)."""
    row: dict[str, Any] = dict(group.setting)
    row.update({"n": group.n, "seeds": " ".join(map(str, group.seeds)), "trial_ids": " ".join(group.trial_ids),
                "experiments": " ".join(group.experiments)})
    for metric in GROUP_METRICS:
        row.update({f"{metric}_{name}": getattr(group.stats[metric], name) for name in SPREAD_FIELDS})
    return row


def write_seed_csv(groups: Sequence[SeedGroup], path: str | Path) -> Path:
    """Write the groups as CSV (the header alone when there are none); returns ``path``."""
    path = Path(path)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=csv_columns(groups), lineterminator="\n")
        writer.writeheader()
        writer.writerows(csv_row(group) for group in groups)
    return path


def page_lines(groups: Sequence[SeedGroup], describe: Callable[[dict], tuple[str, str]]) -> list[str]:
    """The results page's seed spread: a sentence and a Markdown table, or a sentence saying none was measured.

    ``describe`` gives the method and setting of a group's shared configuration as the page's trial
    table words them.
    """
    if not groups:
        return ["Seed spread: no setting here ran with more than one seed, so the run-to-run noise at this scale "
                "is not measured on this page; a one-seed difference of a few F1 points may be noise.", ""]
    columns = ["method", "setting", "n", "seeds", "remaining %", "learned %", "EM", "F1", "F1 min - max"]
    lines = []
    for group in groups:
        method, setting = describe(group.config)
        lines.append({"method": method, "setting": setting, "n": str(group.n),
                      "seeds": ", ".join(map(str, group.seeds)),
                      "remaining %": mean_sd_text(group.stats["remaining_pct"], ".1f"),
                      "learned %": mean_sd_text(group.stats["learned_pct"], ".2f"),
                      "EM": mean_sd_text(group.stats["em"], ".1f"), "F1": mean_sd_text(group.stats["f1"], ".1f"),
                      "F1 min - max": range_text(group.stats["f1"], ".1f")})
    return [
        "Seed spread: the settings below ran with several seeds and an otherwise identical configuration "
        "(completed trials; mean ± sample standard deviation over the seeds). That spread is the run-to-run "
        "noise at this scale: a difference between one-seed trials in the table above that is not well beyond "
        "it says nothing about the methods.",
        "",
        markdown_cells(lines, columns),
        "",
    ]


def markdown_cells(lines: Sequence[dict[str, str]], columns: Sequence[str]) -> str:
    """A Markdown table of text cells; ``|`` in a cell is escaped."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(columns), line(["---"] * len(columns)), *(line([row.get(c, "") for c in columns])
                                                                     for row in lines)])
