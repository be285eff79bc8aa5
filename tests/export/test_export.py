"""`spa-tune export`: Hugging Face folders that plain transformers loads, with the trained model's answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from spa_tune.cli import main
from spa_tune.export.commands import SUMMARY_FILE, run_export
from spa_tune.export.package import load_exported, written_atomically
from spa_tune.export.source import load_trained, newest_checkpoint

LOADER = textwrap.dedent("""
    import sys
    sys.modules["spa_tune"] = None  # importing spa-tune now fails: the folder must stand alone
    import torch
    from transformers import AutoModelForQuestionAnswering
    folder, inputs, out = sys.argv[1:]
    model = AutoModelForQuestionAnswering.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        result = model(**torch.load(inputs))
    torch.save({"start": result.start_logits, "end": result.end_logits, "class": type(model).__name__}, out)
""")


def standalone_logits(folder, inputs, tmp_path):
    """Logits of the exported folder computed in a Python process where spa_tune cannot be imported."""
    torch.save(inputs, tmp_path / "inputs.pt")
    script = tmp_path / "load.py"
    script.write_text(LOADER)
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, str(script), str(folder), str(tmp_path / "inputs.pt"), str(tmp_path / "out.pt")],
                   check=True, cwd=tmp_path, env=env, capture_output=True)
    return torch.load(tmp_path / "out.pt")


def test_fine_pruning_export_answers_like_the_masked_model(trained, tmp_path, capsys):
    out = tmp_path / "fp"
    summary = run_export(str(trained["blocks"]), out, check=True, latency_runs=3)

    assert summary["check"]["same_predictions"]
    assert summary["check"]["masked"] == summary["check"]["exported"]
    assert json.loads((out / SUMMARY_FILE).read_text())["parameters"] == summary["parameters"]
    printed = capsys.readouterr().out
    for fragment in ("parameters: dense", "weight files: dense", "latency (CPU, batch 1", "ratio", "saved:"):
        assert fragment in printed
    assert summary["latency"]["dense_ms"] > 0 and summary["latency"]["exported_ms"] > 0

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 5000, (2, 40), generator=generator)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    alone = standalone_logits(out, inputs, tmp_path)
    with torch.no_grad():
        here = load_exported(out)(**inputs)
    assert alone["class"] == "PrunedBertForQuestionAnswering"
    torch.testing.assert_close(alone["start"], here.start_logits)
    torch.testing.assert_close(alone["end"], here.end_logits)


def test_heads_and_neurons_structure_exports_a_smaller_model(trained, tmp_path):
    summary = run_export(str(trained["heads_neurons"]), tmp_path / "hn", check=True, latency_runs=0)

    layout = summary["layout"]
    config = json.loads((tmp_path / "hn" / "config.json").read_text())
    assert layout["heads"] == config["layer_heads"] and layout["neurons"] == config["layer_intermediate_sizes"]
    # topK keeps half: one of two heads and 64 of 128 neurons per layer survive
    assert layout["heads"] == [1, 1] and layout["neurons"] == [64, 64]
    assert summary["parameters"]["exported"] < summary["parameters"]["dense"]
    assert summary["weights_bytes"]["exported"] < summary["weights_bytes"]["dense"]
    assert summary["check"]["same_predictions"]


def test_a_dense_trial_exports_a_standard_bert(trained, tmp_path):
    summary = run_export(str(trained["dense"]), tmp_path / "dense", check=True, latency_runs=0)
    config = json.loads((tmp_path / "dense" / "config.json").read_text())
    assert config["architectures"] == ["BertForQuestionAnswering"] and "auto_map" not in config
    assert summary["parameters"]["exported"] == summary["parameters"]["dense"]
    assert summary["check"]["same_predictions"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["export", "no/such/trial", "--out", "{tmp}/x"], "not a trial folder, a checkpoint folder or an MLflow run id"),
        (["export", "{tmp}", "--out", "{tmp}/x"], "no trial checkpoint in this folder"),
        (["export", "{blocks}", "--out", "{tmp}/x", "--adapter-only"], "only SPLoPA trials have an adapter"),
        (["export", "{blocks}", "--out", "{tmp}/taken"], "never overwrites"),
        (["export", "0123456789abcdef0123456789abcdef", "--out", "{tmp}/x", "--tracking-uri", "sqlite:///{tmp}/m.db"],
         "no MLflow store at"),
        (["export", "{blocks}", "--out", "{tmp}/x", "--latency-runs", "-1"], "--latency-runs: -1 must be 0"),
        (["export", "{blocks}", "--out", "{tmp}/x", "--max-eval-samples", "5"], "used only with --check"),
        (["export", "{splopa}", "--out", "{tmp}/no/such/dir/x", "--adapter-only"], "does not exist"),
        (["export", "{splopa}", "--out", "{tmp}/taken", "--adapter-only"], "never overwrites"),
        (["export", "{broken}", "--out", "{tmp}/x"], "cannot load the trial's model"),
    ],
)
def test_bad_export_requests_are_one_line_errors(trained, tmp_path, capsys, args, fragment):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    broken = tmp_path / "broken"
    shutil.copytree(newest_checkpoint(trained["blocks"]), broken)
    (broken / "trial_state.pt").write_bytes(b"truncated")
    filled = [a.format(tmp=tmp_path, blocks=trained["blocks"], splopa=trained["splopa"], broken=broken) for a in args]
    assert main(filled) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"


def test_a_checkpoint_without_a_stored_threshold_takes_it_from_its_metrics_log(trained, tmp_path):
    old = tmp_path / "old-checkpoint"
    shutil.copytree(newest_checkpoint(trained["blocks"]), old)
    state = torch.load(old / "trial_state.pt", weights_only=False)
    stored = state["extra"].pop("threshold")
    torch.save(state, old / "trial_state.pt")  # as written before checkpoints recorded it
    assert load_trained(old).threshold == pytest.approx(stored) == 0.3


def test_a_failed_export_leaves_nothing_behind(tmp_path):
    out = tmp_path / "model"
    with pytest.raises(RuntimeError), written_atomically(out) as target:
        target.mkdir()
        (target / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with written_atomically(out) as target:
        target.mkdir()
        (target / "config.json").write_text("{}")
    assert (out / "config.json").is_file() and not (tmp_path / "model.partial").exists()
