"""Results rows, trial status, the Pareto front, the CSV and the figures."""

from __future__ import annotations

import csv

import numpy as np

from spa_tune.report.figures import mask_image, mask_mosaic, pareto_figure, split_layer_name
from spa_tune.report.results import pareto_front, sorted_rows, trial_row, trial_status, write_results_csv
from spa_tune.strata import stratum_label, stratum_of
from spa_tune.text_table import format_table
from spa_tune.trial_values import trial_values


def test_trial_status_from_ray_status_and_steps():
    assert trial_status("TERMINATED", {"step": 100, "total_steps": 100}) == "completed"
    assert trial_status("TERMINATED", {"step": 40, "total_steps": 100}) == "stopped_early"
    assert trial_status("ERROR", {"step": 40, "total_steps": 100}) == "failed"
    assert trial_status("PAUSED", {"step": 40, "total_steps": 100}) == "unfinished"
    assert trial_status("PENDING", {}) == "unfinished"
    assert trial_status("TERMINATED", {}) == "unfinished"


def row(trial_id, remaining, f1, method="splopa", status="completed", learned=10):
    return {"trial_id": trial_id, "method": method, "density": "d", "remaining_pct": remaining, "f1": f1,
            "learned_params": learned, "status": status}


def test_pareto_front_keeps_exactly_the_non_dominated_rows():
    rows = [row("a", 10, 70), row("b", 20, 80), row("c", 20, 75), row("d", 30, 80), row("e", 50, 90),
            row("f", 15, float("nan")), row("g", 10, 70)]
    assert [r["trial_id"] for r in pareto_front(rows)] == ["a", "g", "b", "e"]
    assert pareto_front([]) == []


def test_rows_sorted_by_f1_within_density():
    rows = [dict(row("a", 1, 50), density="x"), dict(row("b", 1, 60), density="y"), dict(row("c", 1, 70), density="x"),
            dict(row("d", 1, None), density="x")]
    assert [r["trial_id"] for r in sorted_rows(rows)] == ["c", "a", "d", "b"]


def test_trial_row_carries_method_density_searched_keys_and_metrics():
    metrics = {"f1": 81.5, "em": 72.0, "remaining_pct": 30.0, "learned_pct": 0.3, "learned_params": 9, "step": 10,
               "total_steps": 10, "node_id": "n1"}
    r = trial_row("t1", trial_values({"method": "splopa", "regularization": "l1"}, {"final_lambda": 50}), metrics,
                  "completed", "", ["final_lambda"])
    # the stratum label is stratified ASHA's (spa_tune.search.stratified_asha); only its use is checked here
    stratum = stratum_label(stratum_of({"method": "splopa", "regularization": "l1", "final_lambda": 50}, None))
    assert "final_lambda=50" in stratum
    assert r == {"trial_id": "t1", "method": "splopa", "pruning_method": "topK", "density": stratum,
                 "final_lambda": 50, "em": 72.0, "f1": 81.5, "remaining_pct": 30.0, "learned_pct": 0.3,
                 "learned_params": 9, "step": 10, "total_steps": 10, "status": "completed", "error": "", "node_id": "n1"}


def test_csv_and_table(tmp_path):
    rows = [row("a", 10.123, 70.5), row("b", 20, 80)]
    path = write_results_csv(rows, tmp_path / "results.csv")
    with open(path) as fh:
        read = list(csv.DictReader(fh))
    assert [r["trial_id"] for r in read] == ["a", "b"] and read[0]["remaining_pct"] == "10.123"
    table = format_table(rows, ["trial_id", "remaining_pct", "f1"]).splitlines()
    assert table[0].split() == ["trial_id", "remaining_pct", "f1"]
    assert table[2].split() == ["a", "10.12", "70.50"]


def test_figures_render(tmp_path):
    masks = {f"bert.encoder.layer.{i}.{m}": np.random.default_rng(i).random((2, 4)) > 0.5
             for i in range(2) for m in ("attention.self.query", "intermediate.dense", "output.dense")}
    assert split_layer_name("bert.encoder.layer.3.attention.output.dense") == (3, "attn out")
    mask_image(masks, "title").save(tmp_path / "masks.png")
    mosaic, layers, columns, _ = mask_mosaic(masks)
    assert layers == [0, 1] and columns == ["query", "ffn in", "ffn out"]
    assert np.nansum(mosaic) == sum(int(m.sum()) for m in masks.values())
    rows = [row("a", 10, 70), row("b", 20, 80, method="fine-pruning", learned=100), row("c", 5, 30, status="stopped_early")]
    pareto_figure(rows, pareto_front(rows)).savefig(tmp_path / "pareto.png")
    assert (tmp_path / "masks.png").stat().st_size > 500 and (tmp_path / "pareto.png").stat().st_size > 5000
