"""Mixed precision of a trial: which arithmetic the passes use, autocast, and fp16's gradient scaler.

Weights, mask scores, optimiser state and the regularizer stay in fp32. bf16 and fp16 only change
the matrix products that ``torch.autocast`` lowers (linear layers, attention); softmax, losses,
sigmoids and the score ranking run in fp32 under autocast. fp16 has a narrow exponent range, so its
loss is scaled by a ``GradScaler`` whose state travels with the checkpoint.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cuda_available() -> bool:
    """Whether torch sees a CUDA device here."""
    return torch.cuda.is_available()


def gpu_has_bf16() -> bool:
    """Whether the visible CUDA device computes in bf16 natively (Ampere and later)."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


def resolve_precision(requested: str, device: str, bf16_gpu: bool | None = None) -> str:
    """``auto``: fp32 on a CPU, bf16 on a GPU that computes in bf16, fp32 on an older GPU; else as asked."""
    if requested != "auto":
        return requested
    if device == "cpu" or (device == "auto" and not cuda_available()):
        return "fp32"
    return "bf16" if (gpu_has_bf16() if bf16_gpu is None else bf16_gpu) else "fp32"


def precision_problem(precision: str, device: str, cuda_available: bool) -> str | None:
    """Why ``precision`` cannot run on ``device`` (``auto``, ``cpu`` or ``cuda``), or None."""
    on_gpu = device == "cuda" or (device == "auto" and cuda_available)
    if precision == "fp16" and not (on_gpu and cuda_available):
        return "fp16 needs a CUDA GPU (its gradient scaler guards GPU half-precision arithmetic); use bf16 or fp32 on a CPU"
    return None


@dataclass
class Precision:
    """The resolved precision of a running trial: autocast settings and, for fp16, the gradient scaler."""

    name: str
    device_type: str
    scaler: torch.amp.GradScaler | None = None

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for forward passes: autocast to bf16/fp16, or nothing for fp32."""
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=DTYPES[self.name])

    def state_dict(self) -> dict:
        """The scaler's state (empty without one), stored in checkpoints."""
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: dict) -> None:
        """Restore the scaler's state from a checkpoint."""
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)


def build_precision(name: str, device: torch.device) -> Precision:
    """A ``Precision`` for a resolved name (fp32, bf16 or fp16) on ``device``; fp16 gets a gradient scaler."""
    scaler = torch.amp.GradScaler(device.type) if name == "fp16" else None
    return Precision(name, device.type, scaler)


def backward_and_step(precision: Precision, loss: torch.Tensor, optimizer, parameters, max_grad_norm: float) -> bool:
    """Backward pass, gradient clipping at ``max_grad_norm`` and one optimiser step.

    With fp16 the loss is scaled, gradients are unscaled before clipping, and a step whose
    gradients overflowed is skipped by the scaler. Returns whether the optimiser stepped.
    """
    optimizer.zero_grad(set_to_none=True)
    scaler = precision.scaler
    if scaler is None:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
        optimizer.step()
        return True
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
    scale = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    return scaler.get_scale() >= scale  # the scale drops only when the step was skipped
