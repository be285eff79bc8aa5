"""Write an exported model folder: removable heads and neurons sliced away, weights, config, tokenizer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..errors import SpaTuneError
from .pruned_bert import PrunedBertConfig, PrunedBertForQuestionAnswering
from .shrink import Layout, shrink_model


@dataclass
class SavedModel:
    """An exported model folder and what it holds."""

    folder: Path
    model: nn.Module
    layout: Layout

    @property
    def needs_remote_code(self) -> bool:
        """Whether loading needs ``trust_remote_code=True`` (layers of different sizes)."""
        return isinstance(self.model, PrunedBertForQuestionAnswering)

    def load_hint(self) -> str:
        """How to load the folder with plain transformers."""
        extra = ", trust_remote_code=True" if self.needs_remote_code else ""
        return f'AutoModelForQuestionAnswering.from_pretrained("{self.folder}"{extra})'


def parameter_count(model: nn.Module) -> int:
    """Number of parameters (shared ones once)."""
    return sum(p.numel() for p in model.parameters())


def weights_bytes(folder: Path) -> int:
    """Bytes of the weight files in a saved model folder."""
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def refuse_existing(out: Path, what: str = "folder") -> None:
    """An export never overwrites: an existing file or non-empty folder at ``out`` is an error."""
    if out.is_file() or (out.is_dir() and any(out.iterdir())):
        raise SpaTuneError(f"--out: {out} exists; an export never overwrites, pick a new {what}")
    if out.exists() and not out.is_dir():
        raise SpaTuneError(f"--out: {out} exists and is not a {what}")


def save_model_folder(model: nn.Module, out: Path, tokenizer=None) -> SavedModel:
    """Shrink a folded model (in place) and save it with ``save_pretrained`` (and its tokenizer)."""
    small, layout = shrink_model(model)
    if isinstance(small, PrunedBertForQuestionAnswering):  # the modeling file travels with the weights
        PrunedBertConfig.register_for_auto_class()
        PrunedBertForQuestionAnswering.register_for_auto_class("AutoModelForQuestionAnswering")
    out.mkdir(parents=True, exist_ok=True)
    small.save_pretrained(out)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return SavedModel(out, small, layout)


def load_exported(folder: Path) -> nn.Module:
    """Load an exported folder the way a user without spa-tune would."""
    from transformers import AutoModelForQuestionAnswering

    return AutoModelForQuestionAnswering.from_pretrained(str(folder), trust_remote_code=True).eval()
