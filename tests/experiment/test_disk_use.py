"""Disk use stays bounded: a finished trial keeps only its newest ``keep_checkpoints`` checkpoints."""

from __future__ import annotations

import json

import yaml


def test_each_trial_keeps_only_its_newest_checkpoints(finished_experiment):
    space = yaml.safe_load((finished_experiment / "space.yaml").read_text())
    keep = space["trial"]["keep_checkpoints"]
    trials = sorted(finished_experiment.glob("trial_*"))
    assert len(trials) == 2
    for trial in trials:
        evaluations = (trial / "metrics.jsonl").read_text().splitlines()
        assert len(evaluations) > keep  # more checkpoints were written than kept
        kept = sorted(p for p in trial.glob("checkpoint_*") if p.is_dir())
        assert len(kept) == keep == 1
        assert (kept[0] / "trial_state.pt").is_file()
        state_step = json.loads(evaluations[-1])["step"]
        assert json.loads((kept[0] / "metrics.jsonl").read_text().splitlines()[-1])["step"] == state_step
        assert not list(trial.glob("*.tmp"))  # no half-written checkpoint left
