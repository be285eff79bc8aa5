"""Seed groups: trials identical except for ``seed``, their mean and spread, and how the report shows them."""

from __future__ import annotations

import csv
import json
import statistics

import pytest

from spa_tune.report.collect import Source
from spa_tune.report.combine import build_report
from spa_tune.report.render import render_json, render_markdown, render_table
from spa_tune.report.seed_tables import page_lines, write_seed_csv
from spa_tune.report.seeds import NO_RESULT_KEYS, canonical, repeated_groups, row_config, seed_groups, with_config


def trial(trial_id, seed, f1, method="fine-pruning", status="completed", **keys):
    return {"trial_id": trial_id, "method": method, "seed": seed, "em": f1 - 10, "f1": f1,
            "remaining_pct": 12.0 + seed / 10, "learned_pct": 1.0, "status": status, **keys}


def test_rows_that_differ_only_in_seed_are_one_group_with_mean_and_sample_sd():
    rows = [trial("a", 1, 50.0), trial("b", 2, 54.0), trial("c", 3, 55.0)]
    [group] = seed_groups(rows)
    assert group.repeated and group.n == 3
    assert group.seeds == [1, 2, 3] and group.trial_ids == ["a", "b", "c"]
    assert group.setting == {"method": "fine-pruning"}  # nothing else differs
    f1 = group.stats["f1"]
    assert f1.mean == pytest.approx(53.0) and f1.sd == pytest.approx(statistics.stdev([50, 54, 55]))
    assert (f1.min, f1.max, f1.n) == (50.0, 55.0, 3)
    assert group.stats["em"].mean == pytest.approx(43.0)
    assert group.stats["remaining_pct"].mean == pytest.approx(12.2)


def test_rows_that_differ_in_another_key_are_not_grouped():
    rows = [trial("a", 1, 50.0, final_lambda=400), trial("b", 2, 52.0, final_lambda=400),
            trial("c", 1, 40.0, final_lambda=600), trial("d", 2, 41.0, method="splopa", final_lambda=400)]
    groups = seed_groups(rows)
    assert [g.trial_ids for g in groups] == [["a", "b"], ["c"], ["d"]]  # by method, then setting
    assert groups[0].setting == {"method": "fine-pruning", "final_lambda": 400}
    assert groups[1].setting == {"method": "fine-pruning", "final_lambda": 600}
    assert [g.trial_ids for g in repeated_groups(rows)] == [["a", "b"]]  # one-seed groups have no spread


def test_single_seed_groups_and_repeated_seeds_show_no_spread():
    assert repeated_groups([trial("a", 1, 50.0), trial("b", 1, 50.0, max_steps=9)]) == []
    [twice] = seed_groups([trial("a", 7, 50.0), trial("b", 7, 50.0)])  # a rerun, not a second seed
    assert twice.n == 2 and not twice.repeated
    [single] = seed_groups([trial("a", 1, 50.0)])
    assert single.stats["f1"].sd is None and single.stats["f1"].mean == 50.0


def test_only_completed_trials_count():
    rows = [trial("a", 1, 50.0), trial("b", 2, 54.0), trial("c", 3, 5.0, status="stopped_early"),
            trial("d", 4, 1.0, status="failed")]
    [group] = repeated_groups(rows)
    assert group.seeds == [1, 2]


def test_keys_that_never_change_a_result_are_ignored():
    from spa_tune.trial.checkpoint import RESUMABLE_CHANGES

    assert NO_RESULT_KEYS == RESUMABLE_CHANGES  # what a resume may change never changes a result
    rows = [trial("a", 1, 50.0, output_dir="/x/a", device="cpu", eval_every=10),
            trial("b", 2, 52.0, output_dir="/x/b", device="cuda", eval_every=0, per_gpu_eval_batch_size=8)]
    [group] = repeated_groups(rows)
    assert group.setting == {"method": "fine-pruning"}


def test_values_read_from_text_match_values_from_yaml():
    from_yaml = {"trial_id": "a", "status": "completed", "seed": 1, "f1": 1.0,
                 "config": {"method": "splopa", "num_train_epochs": 1, "regularization": None, "global_topk": False}}
    from_mlflow = {"trial_id": "b", "status": "completed", "seed": "2", "f1": 3.0,
                   "config": {"method": "splopa", "num_train_epochs": "1.0", "regularization": "None",
                              "global_topk": "False", "seed": "2", "density": "final_threshold=0.7"}}
    assert row_config(from_yaml)["seed"] == 42  # the config mapping, not the row, is the configuration
    from_yaml["config"]["seed"] = 1
    [group] = repeated_groups([from_yaml, from_mlflow])
    assert group.seeds == [1, 2] and group.stats["f1"].mean == 2.0
    assert canonical(1.0) == 1 and canonical("0.12") == 0.12 and canonical(True) == canonical("True")


def test_with_config_puts_the_searched_values_over_the_fixed_ones():
    rows = [{"trial_id": "a", "method": "dense", "pruning_method": "", "regularization": None, "final_lambda": 5.0}]
    [row] = with_config(rows, {"regularization": "l1", "seed": 3, "final_lambda": 1.0}, ["regularization", "final_lambda"])
    assert row["config"] == {"regularization": None, "seed": 3, "final_lambda": 5.0, "method": "dense"}
    assert row_config(row)["pruning_method"] == "topK"  # unset: the default


def fixed_rows(f1s=(50.0, 54.0, 55.0)):
    rows = [trial(f"fp{i}", seed, f1, final_lambda=400) for i, (seed, f1) in enumerate(zip((1, 2, 3), f1s))]
    return rows + [trial("sp", 1, 30.0, method="splopa", final_lambda=400), trial("fp600", 1, 20.0, final_lambda=600)]


def test_report_forms_show_the_groups_and_keep_fronts_over_single_trials(tmp_path):
    report = build_report([Source("x", fixed_rows(), ["seed", "final_lambda"])])
    assert len(report.seed_groups) == 1
    assert [r["trial_id"] for r in report.fronts["remaining"]] == ["fp0", "fp1", "fp2"]  # trials, not group means
    table = render_table(report)
    assert "Seed groups: 1 setting ran with several seeds" in table
    group_line = next(line for line in table.splitlines() if line.startswith("fine-pruning  400"))
    assert "3" in group_line.split() and "53.00 ± 2.65" in group_line and "50.00 - 55.00" in group_line
    data = json.loads(render_json(report))
    [record] = data["seed_groups"]
    assert record["setting"] == {"method": "fine-pruning", "final_lambda": 400}
    assert record["n"] == 3 and record["seeds"] == [1, 2, 3] and record["trial_ids"] == ["fp0", "fp1", "fp2"]
    assert record["f1"]["mean"] == pytest.approx(53.0) and record["f1"]["min"] == 50.0
    markdown = render_markdown(report)
    headings = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Trials", "## Seed groups"]
    assert "| method | final_lambda | n | seeds | em | f1 | f1 range |" in markdown
    path = write_seed_csv(report.seed_groups, tmp_path / "seed_groups.csv")
    [line] = list(csv.DictReader(path.open()))
    assert line["method"] == "fine-pruning" and line["seeds"] == "1 2 3" and float(line["f1_mean"]) == 53.0
    assert float(line["f1_sd"]) == pytest.approx(statistics.stdev([50, 54, 55]))


def test_no_groups_no_section():
    report = build_report([Source("x", fixed_rows()[:1] + fixed_rows()[3:], ["seed"])])
    assert report.seed_groups == []
    assert "Seed groups" not in render_table(report) and "Seed groups" not in render_markdown(report)
    assert json.loads(render_json(report))["seed_groups"] == []
    assert "no setting here ran with more than one seed" in page_lines([], lambda c: ("", ""))[0]


def test_page_lines_escape_pipes_and_say_what_the_spread_is():
    groups = repeated_groups(fixed_rows())
    lines = page_lines(groups, lambda config: ("fine|pruning", f"lambda {config['final_lambda']}"))
    assert "run-to-run noise at this scale" in lines[0]
    row = next(line for line in lines[2].splitlines() if "lambda 400" in line)
    assert row.startswith("| fine\\|pruning | lambda 400 | 3 | 1, 2, 3 |") and "53.0 ± 2.6" in row
