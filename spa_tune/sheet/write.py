"""Write trial results back into the experiment sheet, into the rows the trials came from.

The results go to a copy beside the sheet (``NAME.results.xlsx``, or the first free
``NAME.results-N.xlsx``) or, with ``in_place``, into the sheet itself after a byte copy
``NAME.backup-<UTC yyyymmdd-HHMMSS>.xlsx`` is made. Every write loads the workbook with its
formulas (not ``data_only``), fills the result cells, saves to a temporary file in the target's
folder and ``os.replace``-s it, so a failure never leaves a half-written target.

Concurrent changes: spa-tune remembers the sha256 of the source as read by ``plan()`` and of
the target after each of its own writes. If the file a write would overwrite differs from what
spa-tune last read or wrote (or is open in Excel/LibreOffice), it is left untouched: a warning
is logged and the results, all of them, go to a fresh ``NAME.results[-N].xlsx`` built from the
sheet as planned (the backup in in-place mode, else the source; if the source itself was edited
since, its current content, with a warning). Spreadsheet programs recalculate the formulas on
opening the written file (openpyxl keeps formulas but not their cached values).
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
from collections.abc import Sequence
from copy import copy
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SpaTuneError
from ..files import replace_atomically
from .layout import (
    EM,
    EXP_ID,
    F1,
    FIRST_DATA_ROW,
    HEADER_ROW,
    MARKER,
    REMAIN,
    RESULT_COLUMNS,
    header_columns,
    openpyxl_module,
    pick_sheet,
    require_columns,
    sheet_label,
)

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

log = logging.getLogger("spa_tune.sheet")
STATUSES = ("completed", "stopped_early", "failed")


@dataclass(frozen=True)
class RowResult:
    """The outcome of the trial that came from sheet row ``row``."""

    row: int
    status: str
    remain_pct: float | None
    em: float | None
    f1: float | None
    link: str | None
    reason: str = ""
    exp_id: str | None = None  # the row's EXP ID when the trial started; a row that no longer holds it is not written


def marker_text(result: RowResult) -> str:
    """Marker cell text: the link, or ``stopped early: <reason> <link>`` / ``failed: <reason> <link>``."""
    if result.status == "completed":
        return result.link or ""
    text = result.status.replace("_", " ")
    reason = " ".join(result.reason.split())
    return text + (f": {reason}" if reason else "") + (f" {result.link}" if result.link else "")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Cheap change detector (inode, size, mtime in ns) between reading a file and replacing it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _lock_file(path: Path) -> Path | None:
    """Excel's ``~$NAME`` or LibreOffice's ``.~lock.NAME#`` beside ``path``, if present."""
    for lock in (path.with_name(f"~${path.name}"), path.with_name(f".~lock.{path.name}#")):
        if lock.exists():
            return lock
    return None


def _free_results_path(source: Path) -> Path:
    """The first of ``NAME.results.xlsx``, ``NAME.results-2.xlsx``, ... that does not exist."""
    n = 1
    while True:
        path = source.with_name(f"{source.stem}.results{'' if n == 1 else f'-{n}'}{source.suffix}")
        if not path.exists() and not path.is_symlink():
            return path
        n += 1


def _check_writable(target: Path) -> None:
    """One-line error if ``target`` cannot be (re)written or is open in a spreadsheet program."""
    if target.exists() and not os.access(target, os.W_OK):
        raise SpaTuneError(f"{target}: cannot write the results: the file is read-only")
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise SpaTuneError(f"{target}: cannot write the results: the folder {target.parent} is not writable")
    lock = _lock_file(target)
    if lock is not None:
        raise SpaTuneError(f"{target}: the file is open in a spreadsheet program (lock file {lock.name}); "
                           "close it first")


def _load(data: bytes, path: Path):
    """The workbook in ``data`` with formulas kept; a one-line error if it is no xlsx file."""
    openpyxl = openpyxl_module(path)
    try:
        return openpyxl.load_workbook(io.BytesIO(data))
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException ...
        raise SpaTuneError(f"{path}: not a readable xlsx workbook ({' '.join(str(exc).split())})") from None


def _result_columns(ws: Worksheet, where: str) -> dict[str, int]:
    """Columns of REMAIN, EM, F1 and Marker; a Marker header is added after the last header if missing."""
    columns = header_columns(ws)
    require_columns(columns, RESULT_COLUMNS, where)
    if MARKER not in columns:
        last = max(c.column for c in ws[HEADER_ROW] if c.value is not None and str(c.value).strip())
        cell = ws.cell(HEADER_ROW, last + 1, MARKER)
        cell._style = copy(ws.cell(HEADER_ROW, last)._style)
        columns[MARKER] = last + 1
    return columns


def _number(value: float | None) -> float | None:
    """Four decimals: enough for SPLoPA's learned percentages (0.08 to 0.4 %)."""
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def _fill(ws: Worksheet, columns: dict[str, int], result: RowResult) -> bool:
    """Set the result cells of ``result.row``; non-completed rows get empty numbers.

    A row whose EXP ID is no longer the trial's (rows were inserted or moved) is left alone.
    """
    if result.status not in STATUSES or result.row < FIRST_DATA_ROW:
        raise ValueError(f"bad result for the sheet: {result}")
    if result.exp_id is not None and EXP_ID in columns:
        found = ws.cell(result.row, columns[EXP_ID]).value
        if str(found or "").strip() != result.exp_id:
            log.warning("%s row %d holds EXP ID %r, not %r (the sheet changed); its result is not written there",
                        ws.title, result.row, found, result.exp_id)
            return False
    done = result.status == "completed"
    for name, value in ((REMAIN, result.remain_pct), (EM, result.em), (F1, result.f1)):
        ws.cell(result.row, columns[name]).value = _number(value) if done else None
    marker = ws.cell(result.row, columns[MARKER])
    marker.value = marker_text(result) or None
    marker.hyperlink = result.link or None
    return True


@dataclass
class SheetWriteBack:
    """Writes results into the rows their trials came from, atomically, never over a changed file."""

    source: Path
    sheet: str
    in_place: bool
    target: Path
    source_sha256: str
    target_sha256: str | None = None  # None: spa-tune has not written the target yet
    backup: Path | None = None

    @classmethod
    def plan(cls, source: Path, sheet: str | None, in_place: bool = False) -> SheetWriteBack:
        """Check the sheet and the target before any cluster work; writes nothing."""
        source = Path(source).expanduser().resolve()
        if not source.is_file():
            raise SpaTuneError(f"{source}: {'not a file' if source.exists() else 'no such file'}")
        data = source.read_bytes()
        wb = _load(data, source)
        sheet = pick_sheet(wb.sheetnames, sheet, source)
        require_columns(header_columns(wb[sheet]), RESULT_COLUMNS, sheet_label(source, sheet))
        target = source if in_place else _free_results_path(source)
        _check_writable(target)
        return cls(source, sheet, in_place, target, _sha(data))

    def write(self, results: Sequence[RowResult]) -> Path:
        """Write all ``results`` so far into the target (idempotent); returns the file written."""
        stamp = _stamp(self.target)
        current = _read(self.target)
        problem = self._target_problem(current)
        if problem is None:
            base = current if current is not None else self._planned_content()
        else:
            fresh = _free_results_path(self.source)
            log.warning("%s %s; not overwriting it, the results go to %s", self.target, problem, fresh)
            self.target, self.target_sha256 = fresh, None
            base = self._planned_content()
        wb = _load(base, self.target)
        where = sheet_label(self.target, self.sheet)
        ws = wb[pick_sheet(wb.sheetnames, self.sheet, self.target)]
        columns = _result_columns(ws, where)
        for result in results:
            _fill(ws, columns, result)
        wb.calculation.fullCalcOnLoad = True
        buffer = io.BytesIO()
        wb.save(buffer)
        data = buffer.getvalue()
        if self.in_place and self.target == self.source and self.backup is None:
            self._make_backup(base)
        if _stamp(self.target) != stamp:
            return self.write(results)  # changed while we worked: the next round diverts
        replace_atomically(self.target, data)
        self.target_sha256 = _sha(data)
        return self.target

    def _target_problem(self, current: bytes | None) -> str | None:
        """Why the target must not be overwritten, or None if it is as spa-tune last read or wrote it."""
        if _lock_file(self.target) is not None:
            return "is open in a spreadsheet program"
        if self.target_sha256 is not None:
            intact = current is not None and _sha(current) == self.target_sha256
        elif self.target == self.source:
            intact = current is not None and _sha(current) == self.source_sha256
        else:
            intact = current is None
        return None if intact else "changed since spa-tune last read or wrote it"

    def _planned_content(self) -> bytes:
        """The sheet as planned: the backup, else the source (its current bytes, warned if changed)."""
        if self.backup is not None:
            data = _read(self.backup)
            if data is not None and _sha(data) == self.source_sha256:
                return data
        data = _read(self.source)
        if data is None:
            raise SpaTuneError(f"{self.source}: the sheet disappeared; cannot write the results")
        if _sha(data) != self.source_sha256:
            log.warning("%s changed since spa-tune read it; the results copy starts from its current content",
                        self.source)
        return data

    def _make_backup(self, data: bytes) -> None:
        """Byte copy of the original beside it, ``NAME.backup-<UTC yyyymmdd-HHMMSS>.xlsx``."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        name, n = f"{self.source.stem}.backup-{stamp}", 1
        while (path := self.source.with_name(f"{name}{'' if n == 1 else f'-{n}'}{self.source.suffix}")).exists():
            n += 1
        replace_atomically(path, data)
        self.backup = path

    def to_dict(self) -> dict:
        """JSON-serialisable state, stored in the experiment folder."""
        data = asdict(self)
        for key in ("source", "target", "backup"):
            data[key] = None if data[key] is None else str(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SheetWriteBack:
        """The state saved by ``to_dict``: a resumed experiment continues into the same target."""
        backup = data.get("backup")
        return cls(Path(data["source"]), data["sheet"], bool(data["in_place"]), Path(data["target"]),
                   data["source_sha256"], data.get("target_sha256"), None if backup is None else Path(backup))
