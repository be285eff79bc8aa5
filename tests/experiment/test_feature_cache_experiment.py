"""An experiment's trials share one feature cache in its storage: the first trial builds, the next reads."""

from __future__ import annotations

import json

from spa_tune.experiment.run import run_experiment
from spa_tune.spec.load import load_space

from .conftest import write_space


def test_two_trials_build_the_features_once(ray_runtime, tmp_path, tiny_model_dir):
    path = write_space(
        tmp_path, tiny_model_dir, "cached", trial={"num_train_epochs": 1},
        search={"final_threshold": {"type": "grid", "values": [1.0, 0.5]}}, scheduler={"type": "none"},
        max_concurrent_trials=1,
    )
    outcome = run_experiment(load_space(path), str(path))
    assert [r["status"] for r in outcome.rows] == ["completed", "completed"]
    cache = outcome.folder / "feature_cache"
    entries = sorted(p.parent.name for p in cache.glob("*/manifest.json"))
    assert [e.split("-")[0] for e in entries] == ["eval", "train"]  # one entry per split, built once
    records = [json.loads(p.read_text()) for p in sorted(outcome.folder.glob("trial_*/feature_cache.json"))]
    assert len(records) == 2 and {r["location"] for r in records} == {str(cache)}
    assert all(sorted([r["train"]["entry"], r["eval"]["entry"]]) == entries for r in records)
    built = sorted((r["train"]["built"], r["eval"]["built"]) for r in records)
    assert built == [(False, False), (True, True)]  # the second trial's features came from the cache
