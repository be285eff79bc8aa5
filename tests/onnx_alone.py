"""Run an ONNX file in a separate Python where spa_tune and transformers cannot be imported: what a
deployment with onnxruntime alone gets."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

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


def question_batch(seed: int = 3, batch: int = 3, length: int = 50) -> dict[str, torch.Tensor]:
    """Random token ids with a full attention mask, as the model's three inputs."""
    ids = torch.randint(1000, 5000, (batch, length), generator=torch.Generator().manual_seed(seed))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": torch.zeros_like(ids)}


def logits_in_plain_onnxruntime(model: Path, inputs: dict[str, torch.Tensor], work: Path) -> dict[str, np.ndarray]:
    """``start`` and ``end`` logits of ``model`` (an .onnx file) on ``inputs``, from onnxruntime alone."""
    np.savez(work / "inputs.npz", **{k: v.numpy() for k, v in inputs.items()})
    (work / "run_onnx.py").write_text(RUNNER)
    subprocess.run([sys.executable, str(work / "run_onnx.py"), str(model), str(work / "inputs.npz"),
                    str(work / "out.npz")], check=True, capture_output=True, cwd=work)
    return dict(np.load(work / "out.npz"))
