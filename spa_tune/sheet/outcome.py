"""What goes back into a sheet row: a trial's results row as the sheet's result cells.

The sheet's convention for ``Effective encoder remain weights %``: the remaining percentage of the
encoder's weights for fine-pruning (100 for dense fine-tuning), the learned percentage for SPLoPA.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..files import replace_atomically
from .write import RowResult, SheetWriteBack

# Not *.json: on resume Ray Tune copies the experiment folder's *.json and *.pkl files into its
# driver staging folder and later syncs them back, which would put an old write-back state back.
WRITE_BACK_FILE = "sheet_writeback.yaml"
WRITTEN_STATUSES = ("completed", "stopped_early", "failed")


def sheet_size_pct(row: dict[str, Any]) -> float | None:
    """Column E's value: learned % for SPLoPA, remaining % otherwise."""
    key = "learned_pct" if row.get("method") == "splopa" else "remaining_pct"
    value = row.get(key)
    return None if value is None else float(value)


def why(row: dict[str, Any]) -> str:
    """One line on why a trial has no result: where ASHA stopped it, or its error."""
    if row["status"] == "failed":
        return row.get("error") or "failed"
    f1 = f", F1 {float(row['f1']):.1f}" if row.get("f1") is not None else ""
    return f"ASHA stopped it at step {row.get('step')} of {row.get('total_steps')}{f1}"


def row_result(row: dict[str, Any], link: str | None) -> RowResult | None:
    """The sheet result of one results-table row, or None if it is not a finished sheet trial."""
    if row.get("sheet_row") in (None, "") or row["status"] not in WRITTEN_STATUSES:
        return None
    completed = row["status"] == "completed"
    return RowResult(
        row=int(row["sheet_row"]),
        status=row["status"],
        remain_pct=sheet_size_pct(row) if completed else None,
        em=float(row["em"]) if completed and row.get("em") is not None else None,
        f1=float(row["f1"]) if completed and row.get("f1") is not None else None,
        link=link,
        reason="" if completed else why(row),
        exp_id=row.get("exp_id") or None,
    )


def save_writer(folder: Path, writer: SheetWriteBack) -> None:
    """Keep the write-back state (target, fingerprints) with the experiment (write, then rename)."""
    replace_atomically(Path(folder) / WRITE_BACK_FILE, yaml.safe_dump(writer.to_dict(), sort_keys=False).encode())


def load_writer(folder: Path) -> SheetWriteBack | None:
    """The experiment's write-back, if it writes results into a sheet."""
    path = Path(folder) / WRITE_BACK_FILE
    return SheetWriteBack.from_dict(yaml.safe_load(path.read_text())) if path.exists() else None
