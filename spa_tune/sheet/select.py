"""Which rows of a sheet become trials: ``marked``, ``all``, row numbers and ranges, codes, EXP IDs.

A selection is a comma-separated list; a row is selected when any item matches it:
``marked`` (``Marker`` is ``*``), ``all``, ``12`` or ``14-16`` (sheet row numbers), ``E2`` (a method
code), anything else an EXP ID pattern (``*`` and ``?`` as wildcards; an EXP ID's own ``*``
matches itself). Distillation and global codes are left out unless included, as the original
runner did.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from ..errors import SpaTuneError
from .read import Sheet, SheetRow
from .rows import METHOD_CODES, row_code

RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")
CODE = re.compile(r"^[A-Za-z]\d$")


def default_selection(sheet: Sheet) -> str:
    """``marked`` where the sheet has a Marker column, else ``all``."""
    return "marked" if sheet.has_marker else "all"


def selection_items(selection: str, where: str) -> list[str]:
    """The items of a selection string; an empty item or a backwards range is an error."""
    items = [item.strip() for item in str(selection).split(",")]
    if not all(items):
        raise SpaTuneError(f"{where}: rows {selection!r}: empty item in the selection")
    for item in items:
        if (match := RANGE.match(item)) and int(match[1]) > int(match[2]):
            raise SpaTuneError(f"{where}: rows {selection!r}: range {item!r} runs backwards")
    return items


def item_matches(item: str, row: SheetRow, code: str | None) -> bool:
    """Whether one selection item selects ``row``."""
    lowered = item.lower()
    if lowered == "all":
        return True
    if lowered == "marked":
        return row.marker is not None and str(row.marker.value or "").strip() == "*"
    if item.isdigit():
        return row.row == int(item)
    if match := RANGE.match(item):
        return int(match[1]) <= row.row <= int(match[2])
    if CODE.match(item) and item.upper() in METHOD_CODES:
        return code == item.upper()
    return fnmatch.fnmatchcase(row.exp_id, item)


def raw_code(row: SheetRow) -> str | None:
    """The code cell as written (upper case), not yet checked: rows not selected may hold anything."""
    value = row.code.value
    return str(value).strip().upper() or None if value is not None else None


def left_out(code: str | None, include_distillation: bool, include_global: bool) -> str | None:
    """Why a code is left out by default (``distillation`` / ``global``), or None."""
    if code is None:
        return None
    meaning = METHOD_CODES[code]
    if meaning.distillation and not include_distillation:
        return "distillation"
    if meaning.global_topk and not include_global:
        return "global"
    return None


def select_rows(
    sheet: Sheet, selection: str | None, include_distillation: bool = False, include_global: bool = False
) -> list[SheetRow]:
    """The rows a selection picks, in sheet order; a selection that picks nothing is an error."""
    selection = selection or default_selection(sheet)
    items = selection_items(selection, sheet.label)
    marked = "marked" in (item.lower() for item in items)
    if marked and not sheet.has_marker:
        raise SpaTuneError(f"{sheet.label}: rows 'marked': the sheet has no Marker column (use 'all', row numbers or codes)")
    chosen, skipped = [], {"distillation": 0, "global": 0}
    for row in sheet.rows:
        code = raw_code(row)
        if not any(item_matches(item, row, code) for item in items):
            continue
        code = row_code(row, sheet.label)  # a selected row's code must be known
        reason = left_out(code, include_distillation, include_global)
        if reason:
            skipped[reason] += 1
            continue
        chosen.append(row)
    if not chosen:
        raise SpaTuneError(f"{sheet.label}: rows {selection!r} match no runnable row{_why_empty(sheet.rows, skipped)}")
    return chosen


def _why_empty(rows: Iterable[SheetRow], skipped: dict[str, int]) -> str:
    rows = list(rows)
    notes = [f"{len(rows)} rows have an EXP ID"]
    if any(row.marker is not None for row in rows):
        notes.append(f"{sum(str(row.marker.value or '').strip() == '*' for row in rows if row.marker)} are marked '*'")
    for reason, count in skipped.items():
        if count:
            notes.append(f"{count} left out as {reason} codes (include_{reason}: true or --include-{reason})")
    return " (" + "; ".join(notes) + ")"
