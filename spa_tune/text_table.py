"""Plain-text tables for the terminal: the results table, the report, the plan of a sheet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def cell_text(value: Any) -> str:
    """A table cell: floats rounded for reading (small ones to 4 significant digits), None empty."""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-2 and value else f"{value:.2f}"
    return "" if value is None else str(value)


def format_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A plain-text table of ``columns``, numbers rounded for reading."""
    table = [list(columns)] + [[cell_text(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
