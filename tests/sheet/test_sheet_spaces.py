"""Space files with ``grid_from_sheet``: checks before Ray, the CLI flags, and the Optuna seeding wrapper."""

from __future__ import annotations

import optuna
import pytest
import yaml
from ray import tune
from ray.tune.search.optuna import OptunaSearch

from spa_tune.cli import main
from spa_tune.search.sheet_seeded import SheetSeededSearch

from .sheets import build_sheet, set_cell

SEARCH = {
    "final_threshold": {"type": "choice", "values": [0.1, 0.3, 0.5]},
    "learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-2},
}


def space(tmp_path, **sections) -> str:
    data = {"name": "sheety", "trial": {"model": "tiny", "eval_every": 10}, "storage_path": str(tmp_path / "runs"), **sections}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def sheet(tmp_path):
    return build_sheet(tmp_path / "hp.xlsx")


def test_validate_counts_the_rows_and_paths_are_relative_to_the_space_file(tmp_path, sheet, capsys):
    path = space(tmp_path, grid_from_sheet={"path": "hp.xlsx", "rows": "all"})
    code, out, _ = run_cli(capsys, "validate", "--space", path)
    assert code == 0 and "6 trials, one per selected sheet row" in out
    code, out, _ = run_cli(capsys, "validate", "--space", space(tmp_path), "--sheet", str(sheet), "--rows", "E2,3")
    assert code == 0 and "4 trials" in out
    code, out, _ = run_cli(capsys, "validate", "--space", space(tmp_path), "--sheet", str(sheet), "--include-global")
    assert code == 0 and "4 trials" in out  # marked: 5, 7, 9 and the global D2 row


@pytest.mark.parametrize(
    "sections, argv, expected",
    [
        ({}, ["--sheet", "missing.xlsx"], "missing.xlsx: no such file"),
        ({"search": SEARCH}, ["--sheet", "{sheet}"], "search: with grid_from_sheet and searcher grid the sheet's rows are the trials"),
        ({"searcher": {"type": "random"}}, ["--sheet", "{sheet}"], "searcher.type: sheet rows run with searcher grid"),
        ({"num_samples": 2}, ["--sheet", "{sheet}"], "num_samples: with grid_from_sheet and searcher grid each row runs once"),
        ({"search": SEARCH, "searcher": {"type": "optuna"}, "num_samples": 2}, ["--sheet", "{sheet}"],
         "s.yaml: num_samples: 2 is fewer than the 3 sheet rows that seed the search"),
        ({"search": {"learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}, "searcher": {"type": "optuna"},
          "num_samples": 5}, ["--sheet", "{sheet}"], "L5: learning_rate 3e-05 is outside search.learning_rate"),
        ({"search": SEARCH, "searcher": {"type": "optuna"}, "num_samples": 5}, ["--sheet", "{sheet}", "--rows", "3"],
         "row 3 (final_threshold from the trial section or default): final_threshold 0.7 is outside search.final_threshold"),
        ({}, ["--sheet", "{sheet}", "--in-place"], "grid_from_sheet.in_place: only meaningful with write_back: true"),
        ({}, ["--sheet", "{sheet}", "--rows", "Z1-3"], "rows 'Z1-3' match no runnable row"),
    ],
)
def test_bad_sheet_spaces_fail_before_ray(tmp_path, sheet, capsys, no_ray, sections, argv, expected):
    argv = [a.replace("{sheet}", str(sheet)) for a in argv]
    code, _, err = run_cli(capsys, "--space", space(tmp_path, **sections), *argv)
    assert code == 2 and expected in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_write_back_problems_fail_before_ray(tmp_path, sheet, capsys, no_ray):
    (tmp_path / "~$hp.results.xlsx").write_text("lock")
    code, _, err = run_cli(capsys, "--space", space(tmp_path), "--sheet", str(sheet), "--write-back")
    assert code == 2 and "hp.results.xlsx" in err and "lock file" in err
    (tmp_path / "~$hp.results.xlsx").unlink()
    set_cell(sheet, "F2", "Exact match")  # the EM column renamed
    before = sheet.read_bytes()
    code, _, err = run_cli(capsys, "--space", space(tmp_path), "--sheet", str(sheet), "--write-back")
    assert code == 2 and "lacks the column(s) 'EM'" in err
    assert not (tmp_path / "runs").exists() and sheet.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hp.xlsx", "s.yaml"]


def test_seeded_optuna_search_tags_the_row_points_and_survives_save_restore(tmp_path):
    points = {5: {"final_threshold": 0.1, "learning_rate": 3e-5}, 9: {"final_threshold": 0.3, "learning_rate": 1e-4}}

    def searcher():
        inner = OptunaSearch(
            space={"final_threshold": tune.choice([0.1, 0.3, 0.5]), "learning_rate": tune.loguniform(1e-5, 1e-2)},
            metric="f1", mode="max", points_to_evaluate=list(points.values()),
            sampler=optuna.samplers.TPESampler(seed=0),
        )
        return SheetSeededSearch(inner, points)

    seeded = searcher()
    first = seeded.suggest("t1")
    assert first == {**points[5], "sheet_row": 5}
    seeded.on_trial_complete("t1", {"f1": 50.0, "config": first})
    seeded.save(str(tmp_path / "searcher.pkl"))  # what Tune does: the base searcher, and the wrapper's state
    state = seeded.get_state()
    restored = searcher()
    restored.restore(str(tmp_path / "searcher.pkl"))
    restored.set_state(state)
    assert restored.pending == {9: points[9]}
    assert restored.suggest("t2") == {**points[9], "sheet_row": 9}
    third = restored.suggest("t3")
    assert "sheet_row" not in third and set(third) == {"final_threshold", "learning_rate"}


def test_plan_kept_for_resume_round_trips(tmp_path, sheet):
    from spa_tune.sheet.plan import load_plan, plan_sheet, save_plan
    from spa_tune.spec.space import SheetSpec, SpaceSpec

    plan = plan_sheet(SpaceSpec(name="p", grid_from_sheet=SheetSpec(path=str(sheet), rows="all")))
    save_plan(tmp_path, plan)
    again = load_plan(tmp_path)
    assert again == plan and again.origin(7)["exp_id"] == "l1_*_soft" and again.values()[7]["method"] == "splopa"
    assert load_plan(tmp_path / "elsewhere") is None


def test_a_sheet_written_back_by_spa_tune_reads_the_same(tmp_path, sheet):
    from spa_tune.sheet.plan import plan_sheet
    from spa_tune.sheet.write import RowResult, SheetWriteBack
    from spa_tune.spec.space import SheetSpec, SpaceSpec

    writer = SheetWriteBack.plan(sheet, None)
    written = writer.write([RowResult(5, "completed", 12.5, 70.0, 80.0, "http://127.0.0.1:5000/#/experiments/1/runs/x")])
    spec = lambda path: SpaceSpec(name="p", grid_from_sheet=SheetSpec(path=str(path), rows="all"))  # noqa: E731
    assert [r.values for r in plan_sheet(spec(written)).rows] == [r.values for r in plan_sheet(spec(sheet)).rows]
