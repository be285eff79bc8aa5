"""One report from one or more experiments: a single trial table and two Pareto fronts over it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .collect import Source
from .results import completed_front
from .seeds import SeedGroup, repeated_groups
from .values import number

FIRST_COLUMNS = ("trial_id", "method")
METRIC_COLUMNS = ("em", "f1", "remaining_pct", "learned_pct", "learned_params", "status")
# Where each trial is, in the CSV and JSON forms: what `spa-tune export` takes.
LINK_COLUMNS = ("trial_folder", "run_id")
# The two fronts: F1 against each size measure (smaller is better).
FRONTS = {"remaining": "remaining_pct", "learned": "learned_pct"}


@dataclass
class Report:
    """Trials of the named experiments, the columns shown, the front for each size measure, and the
    seed groups with at least two seeds (trials identical but for ``seed``)."""

    labels: list[str]
    rows: list[dict]
    columns: list[str]
    fronts: dict[str, list[dict]]
    seed_groups: list[SeedGroup] = field(default_factory=list)

    @property
    def record_columns(self) -> list[str]:
        """The table's columns and the trial's folder and MLflow run id: the CSV and JSON forms."""
        return [*self.columns, *LINK_COLUMNS]


def table_columns(key_params: Sequence[str], several: bool) -> list[str]:
    """[experiment,] trial_id, method, the key params, EM, F1, remaining %, learned %, learned params, status."""
    keys = [k for k in dict.fromkeys(key_params) if k not in (*FIRST_COLUMNS, *METRIC_COLUMNS, "experiment")]
    return (["experiment"] if several else []) + [*FIRST_COLUMNS, *keys, *METRIC_COLUMNS]


def ordered(rows: Sequence[dict], labels: Sequence[str]) -> list[dict]:
    """Rows in the order of their experiments, best F1 first within each."""
    rank = {label: i for i, label in enumerate(labels)}

    def key(row: dict) -> tuple:
        f1 = number(row.get("f1"))
        return rank.get(row["experiment"], 0), f1 is None, -(f1 or 0.0)

    return sorted(rows, key=key)


def unique_labels(sources: Sequence[Source]) -> list[str]:
    """One distinct label per source: a repeated name gets its origin, then a number, appended."""
    labels: list[str] = []
    for source in sources:
        label = source.label
        if any(other.label == label for other in sources if other is not source):
            label = f"{label} ({source.origin})"
        base, n = label, 2
        while label in labels:
            label, n = f"{base} #{n}", n + 1
        labels.append(label)
    return labels


def build_report(sources: Sequence[Source]) -> Report:
    """Combine the sources' trials (each tagged with its experiment); compute both fronts (over single
    trials) and the seed groups."""
    labels = unique_labels(sources)
    rows = [{"experiment": label, **row} for label, source in zip(labels, sources) for row in source.rows]
    rows = ordered(rows, labels)
    key_params = [key for source in sources for key in source.key_params]
    columns = table_columns(key_params, several=len(sources) > 1)
    fronts = {name: completed_front(rows, x) for name, x in FRONTS.items()}
    return Report(labels, rows, columns, fronts, repeated_groups(rows))
