"""Build the example experiment sheet shipped as ``search_spaces/hyperparameters.xlsx``.

Same layout as the original experiment sheet (group headings in row 1, column names in row 2,
method code in A, a label formula in B, results in E-G, hyper-parameters from I, ``Marker`` last),
with quickstart-sized rows: the dense reference, soft movement (E2) with fine-pruning and SPLoPA,
movement topK (D1), and a global (D2) and a distillation (D3) row that are left out by default.

Run: ``python -m spa_tune.sheet.example search_spaces/hyperparameters.xlsx``
"""

from __future__ import annotations

import sys
from pathlib import Path

from .layout import openpyxl_module

HYPER_PARAMETERS = (
    "per_gpu_train_batch_size", "warmup_steps", "num_train_epochs", "learning_rate",
    "mask_scores_learning_rate", "initial_threshold", "final_threshold", "initial_warmup", "final_warmup",
    "pruning_method", "mask_init", "mask_scale", "regularization", "final_lambda", "teacher_type",
    "teacher_name_or_path", "alpha_ce", "alpha_distil", "num_splopa_prototypes", "splopa_prototype_rank",
    "splopa_init_range",
)
GROUPS = {  # row-1 heading above the first column of each group
    "learning_rate": "Learning Rate", "initial_threshold": "Scheduling", "pruning_method": "Pruning",
    "regularization": "Regularization", "teacher_type": "Distillation", "num_splopa_prototypes": "SPLoPA",
}
COMMON = dict(per_gpu_train_batch_size=16.0, warmup_steps=20.0, num_train_epochs=2.0, learning_rate=3e-4)
SOFT = dict(
    COMMON, mask_scores_learning_rate=5e-2, initial_threshold=0.0, final_threshold=0.1, initial_warmup=1.0,
    final_warmup=2.0, pruning_method="sigmoied_threshold", mask_init="constant", mask_scale=0.0, regularization="l1",
)
TOPK = dict(
    COMMON, mask_scores_learning_rate=5e-2, initial_threshold=1.0, initial_warmup=1.0, final_warmup=2.0,
    pruning_method="topK", mask_init="constant", mask_scale=0.0, regularization="null",
)
SPLOPA = dict(num_splopa_prototypes=64.0, splopa_prototype_rank=2.0, splopa_init_range=1e-4)
# (code, model label, EXP ID, hyper-parameters, marker); None rows are blank separators.
ROWS = [
    (None, "MiniLM-L6-H384 (dense)", "minilm-dense", dict(COMMON), "*"),
    None,
    ("E2", "Soft movement", "soft_0.1_l1_*_3e-4_5e-2_2_epochs", dict(SOFT, final_lambda=50.0), "*"),
    ("E2", None, "soft_0.1_l1_*_3e-4_5e-2_2_epochs", dict(SOFT, final_lambda=200.0), None),
    ("E2", "Soft movement + SPLoPA", "soft_0.1_l1_*_3e-4_5e-2_2_epochs", dict(SOFT, final_lambda=50.0, **SPLOPA), "*"),
    None,
    ("D1", "Movement local (topK)", "topK_1.0_*_3e-4_5e-2_2_epochs", dict(TOPK, final_threshold=0.3), "*"),
    ("D1", None, "topK_1.0_*_3e-4_5e-2_2_epochs", dict(TOPK, final_threshold=0.1), None),
    ("D2", "Movement global (topK)", "topK_global_1.0_*_3e-4_5e-2_2_epochs", dict(TOPK, final_threshold=0.3), "*"),
    ("D3", "Movement + distillation", "topK_distil_1.0_*_3e-4_5e-2_2_epochs",
     dict(TOPK, final_threshold=0.3, teacher_type="bert", teacher_name_or_path="minilm", alpha_ce=0.5, alpha_distil=0.5), "*"),
]


def build_example(path: str | Path) -> Path:
    """Write the example sheet (``Details - SQuAD`` plus an ``HP description`` sheet) to ``path``."""
    openpyxl_module(path)
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill

    header = ["", "", "Model", "EXP ID", "Effective encoder remain weights %", "EM", "F1", "", *HYPER_PARAMETERS, "Marker"]
    workbook = Workbook()
    ws = workbook.active
    ws.title = "Details - SQuAD"
    ws.cell(row=1, column=3, value="minilm/generated")
    group_fill = PatternFill("solid", fgColor="DDEBF7")
    for name, heading in GROUPS.items():
        cell = ws.cell(row=1, column=header.index(name) + 1, value=heading)
        cell.font, cell.fill = Font(bold=True), group_fill
    for column, name in enumerate(header, start=1):
        cell = ws.cell(row=2, column=column, value=name or None)
        cell.font, cell.alignment = Font(bold=True), Alignment(wrap_text=True)
    row = 3
    for entry in ROWS:
        if entry is not None:
            code, label, exp_id, params, marker = entry
            ws.cell(row=row, column=1, value=code)
            ws.cell(row=row, column=2, value=f'=IF(E{row}<>"", ROUND(E{row},0)&A{row}, "")')
            ws.cell(row=row, column=3, value=label)
            ws.cell(row=row, column=4, value=exp_id)
            for column in (5, 6, 7):
                ws.cell(row=row, column=column).number_format = "0.00"
            for name, value in params.items():
                ws.cell(row=row, column=header.index(name) + 1, value=value)
            ws.cell(row=row, column=len(header), value=marker)
        row += 1
    ws.freeze_panes = "E3"
    ws.column_dimensions["D"].width = 40
    describe = workbook.create_sheet("HP description")
    for i, name in enumerate(HYPER_PARAMETERS, start=1):
        describe.cell(row=i, column=2, value=name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


if __name__ == "__main__":
    print(build_example(sys.argv[1] if len(sys.argv) > 1 else "search_spaces/hyperparameters.xlsx"))
