"""SPLoPA adapter files: byte-exact size accounting and a round trip to the same answers."""

from __future__ import annotations

import json
import struct

import pytest
from safetensors import safe_open

from spa_tune.cli import main
from spa_tune.export.adapter import adapter_size
from spa_tune.export.commands import run_apply_adapter, run_export
from spa_tune.export.package import load_exported
from spa_tune.export.source import load_trained, newest_checkpoint
from spa_tune.model.counting import count_weights
from spa_tune.trial.scoring import score_models
from tests.conftest import tiny_bert


def safetensors_header_bytes(path) -> int:
    """Length prefix plus JSON header of a safetensors file, read from the file itself."""
    with open(path, "rb") as fh:
        return 8 + struct.unpack("<Q", fh.read(8))[0]


@pytest.mark.parametrize("name", ["splopa", "splopa_l0"])
def test_adapter_round_trip_gives_the_trained_answers(trained, tmp_path, tiny_model_dir, name, capsys):
    adapter = tmp_path / "task.safetensors"
    run_export(str(trained[name]), adapter, adapter_only=True)
    printed = capsys.readouterr().out
    assert "learned parameters:" in printed and "file:" in printed

    run_apply_adapter(tiny_model_dir, adapter, tmp_path / "rebuilt", latency_runs=2)

    trial = load_trained(newest_checkpoint(trained[name]))
    scores = score_models({"masked": trial.model, "rebuilt": load_exported(tmp_path / "rebuilt")}, trial.cfg)
    assert scores["rebuilt"]["predictions"] == scores["masked"]["predictions"]
    assert abs(scores["rebuilt"]["f1"] - scores["masked"]["f1"]) <= 0.1
    with safe_open(str(adapter), framework="pt") as handle:
        has_gates = any(key.endswith(".gates") for key in handle.keys())
    assert has_gates == (name == "splopa_l0")  # L0 keeps blocks with gate values below one


def test_adapter_size_matches_the_learned_parameter_count(trained, tmp_path):
    adapter = tmp_path / "task.safetensors"
    run_export(str(trained["splopa"]), adapter, adapter_only=True)
    trial = load_trained(newest_checkpoint(trained["splopa"]))
    counts = count_weights(trial.model, "splopa")
    size = adapter_size(adapter)

    assert size.learned == counts.learned_params
    masked = [layer for layer in counts.layers.values()]
    assert size.kept_blocks * 32 * 32 == sum(layer.remaining for layer in masked)
    assert size.head == 2 * 64 + 2  # qa_outputs of hidden size 64
    assert size.biases == 2 * (3 * 64 + 64 + 128 + 64)  # the masked layers' biases of two layers
    assert size.layernorms == 2 * 2 * 2 * 64  # two layers x two encoder LayerNorms x (weight, bias)
    assert size.mask_bytes == sum(-(-(layer.weights // 1024) // 8) for layer in masked)
    assert size.header_bytes == safetensors_header_bytes(adapter)
    assert size.file_bytes == adapter.stat().st_size  # header_bytes is the rest: 4 x floats + mask bytes + header
    with safe_open(str(adapter), framework="pt") as handle:
        meta = json.loads(handle.metadata()["spa_tune"])
    assert meta["num_prototypes"] == 8 and meta["block"] == [32, 32]


def test_adapter_on_another_base_is_refused(trained, tmp_path, capsys):
    adapter = tmp_path / "task.safetensors"
    run_export(str(trained["splopa"]), adapter, adapter_only=True)
    other = tmp_path / "other-base"
    tiny_bert(seed=7).save_pretrained(other)
    capsys.readouterr()

    assert main(["apply-adapter", str(other), str(adapter), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "differ from those the adapter was trained on" in err
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_an_adapter_is_refused(tmp_path, tiny_model_dir, capsys):
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a safetensors file")
    assert main(["apply-adapter", tiny_model_dir, str(bogus), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bogus.safetensors: not a readable adapter file" in err
