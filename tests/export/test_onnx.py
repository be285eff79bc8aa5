"""`spa-tune export --format onnx`: the pruned network as ONNX that onnxruntime runs with no custom code,
with the trained model's logits, timed against the dense network's ONNX."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from spa_tune.cli import main
from spa_tune.export.commands import SUMMARY_FILE, run_export
from spa_tune.export.source import load_trained, newest_checkpoint

RUNNER = textwrap.dedent("""
    import sys
    sys.modules["spa_tune"] = None  # no spa-tune, no transformers: onnxruntime alone
    sys.modules["transformers"] = None
    import numpy as np
    import onnxruntime
    model, inputs, out = sys.argv[1:]
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    feeds = dict(np.load(inputs))
    start, end = session.run(["start_logits", "end_logits"], feeds)
    np.savez(out, start=start, end=end)
""")


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

    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(1000, 5000, (3, 50), generator=generator)  # another batch and length than the export's
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}
    np.savez(tmp_path / "inputs.npz", **{k: v.numpy() for k, v in inputs.items()})
    (tmp_path / "run.py").write_text(RUNNER)
    subprocess.run([sys.executable, str(tmp_path / "run.py"), str(out / "model.onnx"), str(tmp_path / "inputs.npz"),
                    str(tmp_path / "out.npz")], check=True, capture_output=True, cwd=tmp_path)
    alone = np.load(tmp_path / "out.npz")
    with torch.no_grad():
        reference = load_trained(newest_checkpoint(trained[name])).model.eval()(**inputs)
    np.testing.assert_allclose(alone["start"], reference.start_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(alone["end"], reference.end_logits.numpy(), atol=1e-4)


def test_onnx_with_adapter_only_is_one_line(trained, tmp_path, capsys):
    code = main(["export", str(trained["splopa"]), "--format", "onnx", "--adapter-only", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("spa-tune: error: --format onnx: ") and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()
