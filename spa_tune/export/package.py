"""Write an exported model folder: removable heads and neurons sliced away, weights, config, tokenizer."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
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

    def load_hint(self, folder: Path) -> str:
        """How to load the model, saved at ``folder``, with plain transformers."""
        extra = ", trust_remote_code=True" if self.needs_remote_code else ""
        return f'AutoModelForQuestionAnswering.from_pretrained("{folder}"{extra})'


def parameter_count(model: nn.Module) -> int:
    """Number of parameters (shared ones once)."""
    return sum(p.numel() for p in model.parameters())


def weights_bytes(folder: Path) -> int:
    """Bytes of the weight files in a saved model folder."""
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def refuse_existing(out: Path, what: str = "folder") -> None:
    """An export never overwrites: an existing file, or a non-empty folder (for a folder), is an error."""
    taken = out.exists() if what == "file" else (out.exists() and (not out.is_dir() or any(out.iterdir())))
    if taken:
        raise SpaTuneError(f"--out: {out} exists; an export never overwrites, pick a new {what}")
    if what == "file" and not out.parent.is_dir():
        raise SpaTuneError(f"--out: folder {out.parent} does not exist")


@contextlib.contextmanager
def written_atomically(out: Path) -> Iterator[Path]:
    """Yield ``<out>.partial`` to write into; on success it becomes ``out``, on failure it goes."""
    partial = out.with_name(out.name + ".partial")
    _remove(partial)
    try:
        yield partial
    except BaseException:
        _remove(partial)
        raise
    if out.is_dir():  # an empty folder the user made for the export
        out.rmdir()
    os.replace(partial, out)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


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
