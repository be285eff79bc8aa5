"""Experiment sheets built by the tests with openpyxl, in the layouts the reader must accept."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill

SHEET = "Details - SQuAD"
RESULTS = ["Model", "EXP ID", "Effective encoder remain weights %", "EM", "F1"]
HYPER = [
    "per_gpu_train_batch_size", "warmup_steps", "num_train_epochs", "learning_rate", "mask_scores_learning_rate",
    "initial_threshold", "final_threshold", "initial_warmup", "final_warmup", "pruning_method", "mask_init",
    "mask_scale", "regularization", "final_lambda", "teacher_type", "teacher_name_or_path", "alpha_ce", "alpha_distil",
]
SPLOPA = ["num_splopa_prototypes", "splopa_prototype_rank", "splopa_init_range"]
NEW_LAYOUT = [None, None, *RESULTS, None, *HYPER, *SPLOPA, "Marker"]
OLD_LAYOUT = [None, None, *RESULTS, None, *HYPER]

SOFT = dict(
    per_gpu_train_batch_size=16.0, warmup_steps=5400.0, num_train_epochs=10.0, learning_rate=3e-5,
    mask_scores_learning_rate=1e-2, initial_threshold=0.0, final_threshold=0.1, initial_warmup=1.0, final_warmup=2.0,
    pruning_method="sigmoied_threshold", mask_init="constant", mask_scale=0.0, regularization="l1",
)
TOPK = dict(
    per_gpu_train_batch_size=16.0, warmup_steps=5400.0, num_train_epochs=10.0, learning_rate=3e-5,
    mask_scores_learning_rate=1e-2, initial_threshold=1.0, initial_warmup=1.0, final_warmup=2.0,
    pruning_method="topK", mask_init="constant", mask_scale=0.0, regularization="null",
)
DENSE = dict(per_gpu_train_batch_size=16.0, warmup_steps=5400.0, num_train_epochs=3.0, learning_rate=3e-5)

# (sheet row, code, EXP ID, cells, marker): a dense reference, E2 rows (one SPLoPA), D1, D2, D3.
ROWS = [
    (3, None, "bert-base-uncased", DENSE, None),
    (5, "E2", "l1_*_soft", dict(SOFT, final_lambda=10.0), "*"),
    (6, "E2", "l1_*_soft", dict(SOFT, final_lambda=100.0), None),
    (7, "E2", "l1_*_soft", dict(SOFT, final_lambda=50.0, num_splopa_prototypes=64.0, splopa_prototype_rank=2.0,
                                splopa_init_range=1e-4), "*"),
    (9, "D1", "topK_1.0_*_epochs", dict(TOPK, final_threshold=0.3), "*"),
    (10, "D1", "topK_1.0_*_epochs", dict(TOPK, final_threshold=0.1), "https://wandb.ai/old/run"),
    (11, "D2", "topK_global_*", dict(TOPK, final_threshold=0.3), "*"),
    (12, "D3", "topK_distil_*", dict(TOPK, final_threshold=0.3, teacher_name_or_path="bert-teacher"), "*"),
]


def build_sheet(path: Path, header=NEW_LAYOUT, rows=ROWS, sheet: str = SHEET) -> Path:
    """A workbook like the original: headings in row 1, names in row 2, label formulas in B, styles."""
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    names = list(header)
    for name, heading in (("learning_rate", "Learning Rate"), ("pruning_method", "Pruning"), ("Marker", "Run")):
        if name in names:
            ws.cell(1, names.index(name) + 1, heading).font = Font(bold=True)
    for column, name in enumerate(names, start=1):
        if name:
            ws.cell(2, column, name).font = Font(bold=True)
    for row, code, exp_id, cells, marker in rows:
        ws.cell(row, 1, code)
        ws.cell(row, 2, f'=IF(E{row}<>"", ROUND(E{row},0)&A{row}, "")')
        ws.cell(row, names.index("EXP ID") + 1 if "EXP ID" in names else 4, exp_id)
        for key, value in cells.items():
            if key in names:
                ws.cell(row, names.index(key) + 1, value)
        if "Marker" in names:
            ws.cell(row, names.index("Marker") + 1, marker)
    ws["C3"].fill = PatternFill("solid", fgColor="FFFF00")
    wb.create_sheet("HP description")["A1"] = "per_gpu_train_batch_size"
    wb.save(path)
    return path


def set_cell(path: Path, coordinate: str, value, sheet: str = SHEET) -> Path:
    """Change one cell of a saved workbook."""
    from openpyxl import load_workbook

    wb = load_workbook(path)
    wb[sheet][coordinate] = value
    wb.save(path)
    return path


def cache_formula_value(path: Path, coordinate: str, cached: str) -> Path:
    """Give a formula cell a cached value, as Excel does on save (openpyxl writes none)."""
    tmp = path.with_suffix(".tmp.xlsx")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                pattern = rf'(<c r="{coordinate}"[^>]*>)<f>(.*?)</f><v\s*/?>(</v>)?'
                text, count = re.subn(pattern, rf"\1<f>\2</f><v>{cached}</v>", text)
                assert count == 1, f"no formula cell {coordinate} in the sheet XML"
                data = text.encode()
            dst.writestr(item, data)
    shutil.move(tmp, path)
    return path
