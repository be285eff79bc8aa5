"""Training loss: the QA cross-entropy, optional distillation, optional score regularization."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(student_start, student_end, teacher_start, teacher_end, temperature: float) -> torch.Tensor:
    """Mean over start and end of ``KL(softmax(t/T) || log_softmax(s/T)) * T^2`` (batch mean)."""

    def one(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return F.kl_div(
            F.log_softmax(student / temperature, dim=-1),
            F.softmax(teacher / temperature, dim=-1),
            reduction="batchmean",
        ) * temperature**2

    return (one(student_start, teacher_start) + one(student_end, teacher_end)) / 2


def combine_losses(qa_loss, distil_loss=None, alpha_ce: float = 0.5, alpha_distil: float = 0.5, reg=None, lam: float = 0.0):
    """``alpha_distil * distil + alpha_ce * qa`` (or just ``qa``), plus ``lam * reg`` when given."""
    loss = qa_loss if distil_loss is None else alpha_distil * distil_loss + alpha_ce * qa_loss
    if reg is not None:
        loss = loss + lam * reg
    return loss
