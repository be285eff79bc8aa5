"""The exported (pruned) QA model as ONNX: written with torch's exporter, run with onnxruntime.

The ONNX file holds the smaller network itself (heads and neurons removed, layers of different
sizes), so any onnxruntime runs it with no custom code, unlike the Hugging Face folder of a pruned
model, which needs ``trust_remote_code``. Inputs and outputs keep the names transformers uses, with
batch and sequence length dynamic.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import SpaTuneError

ONNX_FILE = "model.onnx"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUTS = ("start_logits", "end_logits")
OPSET = 18


def onnx_runtime():
    """``onnxruntime``, which the ``onnx`` extra installs; a one-line error naming the extra if absent."""
    try:
        import onnxruntime
    except ImportError:
        raise SpaTuneError("--format onnx: needs onnxruntime and onnxscript: pip install 'spa-tune[onnx]'") from None
    return onnxruntime


def write_onnx(model: nn.Module, path: Path, example: dict[str, torch.Tensor]) -> Path:
    """Export ``model`` (a QA model taking ``INPUTS``) to ``path``, batch and sequence dynamic."""
    onnx_runtime()
    model = model.eval()
    axes = {name: {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")} for name in INPUTS}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on what it traced
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        program = torch.onnx.export(
            model, (), kwargs={name: example[name] for name in INPUTS}, input_names=list(INPUTS),
            output_names=list(OUTPUTS), dynamic_shapes=axes, opset_version=OPSET, dynamo=True, verbose=False,
        )
        program.save(str(path))
    return path


class OnnxModel:
    """An onnxruntime session called like the torch model: ``model(**inputs)`` gives the start and end logits."""

    def __init__(self, path: Path, threads: int | None = None):
        ort = onnx_runtime()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # Idle worker threads that spin take the cores from whatever runs next: timed by turns beside the
        # torch model on 2 cores, the dense torch model measured 140 ms instead of 72 ms.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def eval(self) -> OnnxModel:
        """For ``measure_latency``, which puts every model in eval mode."""
        return self

    def __call__(self, **inputs: torch.Tensor) -> dict[str, np.ndarray]:
        feeds = {name: inputs[name].numpy() for name in INPUTS}
        return dict(zip(OUTPUTS, self.session.run(list(OUTPUTS), feeds)))


@torch.no_grad()
def logits_difference(model: nn.Module, onnx: OnnxModel, inputs: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between the torch model's and the ONNX model's start and end logits."""
    reference = model.eval()(**inputs)
    got = onnx(**inputs)
    return max(float(np.abs(got[name] - getattr(reference, name).numpy()).max()) for name in OUTPUTS)
