"""`spa-tune export --format onnx`: the pruned network as ONNX that onnxruntime runs with no custom code,
with the trained model's logits, timed against the dense network's ONNX."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spa_tune.cli import main
from spa_tune.export.commands import SUMMARY_FILE, run_export
from spa_tune.export.source import load_trained, newest_checkpoint
from tests.onnx_alone import logits_in_plain_onnxruntime, question_batch


@pytest.mark.slow
@pytest.mark.parametrize("name", ["heads_neurons", "splopa"])
def test_onnx_export_runs_in_plain_onnxruntime_with_the_trained_logits(trained, tmp_path, capsys, name):
    out = tmp_path / "onnx"
    summary = run_export(str(trained[name]), out, fmt="onnx", latency_runs=3)
    assert (out / "model.onnx").is_file() and (out / "tokenizer.json").is_file()
    assert json.loads((out / SUMMARY_FILE).read_text())["max_logit_difference"] == summary["max_logit_difference"]
    assert summary["max_logit_difference"] <= 1e-3
    assert summary["latency"]["engine"] == "onnxruntime" and summary["latency"]["dense_ms"] > 0
    printed = capsys.readouterr().out
    assert "largest logit difference" in printed and "onnxruntime" in printed
    if name == "heads_neurons":  # heads and neurons are gone from the network itself
        assert summary["parameters"]["exported"] < summary["parameters"]["dense"]

    inputs = question_batch()  # another batch and length than the export's
    alone = logits_in_plain_onnxruntime(out / "model.onnx", inputs, tmp_path)
    with torch.no_grad():
        reference = load_trained(newest_checkpoint(trained[name])).model.eval()(**inputs)
    np.testing.assert_allclose(alone["start"], reference.start_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(alone["end"], reference.end_logits.numpy(), atol=1e-4)


def test_onnx_with_adapter_only_is_one_line(trained, tmp_path, capsys):
    code = main(["export", str(trained["splopa"]), "--format", "onnx", "--adapter-only", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("spa-tune: error: --format onnx: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()
