"""QA models named by ``model`` or ``teacher_name_or_path``: a Hugging Face model or a finished dense trial.

A name is a hub id, a model folder or ``minilm`` (``load_qa_model``), or a spa-tune trial folder,
checkpoint folder, experiment folder (its best completed dense trial) or MLflow run id
(``locate.trained_checkpoint``). A trial is rebuilt from its checkpoint's ``trial_config.json``
(its own base model, then the checkpoint's weights) and must be ``method: dense``.

The teacher is loaded once per process (a Ray worker may run several trials one after another), in
eval mode and without gradients, and shared by the trials that distil from it; it never changes.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch import nn

from ..errors import SpaTuneError
from ..model.loading import OFFLINE_MODEL_NAME, expanded, load_qa_model
from .checkpoint import STATE_FILE, read_state, restore_model, rng_states, set_rng_states
from .locate import base_model_name, dense_trial_config, trained_checkpoint


def _keyed(key: str, err: SpaTuneError) -> SpaTuneError:
    """The error of loading a model, naming the trial key it came from."""
    return SpaTuneError(f"{key}: {str(err).removeprefix('model: ')}")


def _load_checkpoint_model(checkpoint: Path, name: str, key: str) -> nn.Module:
    cfg = dense_trial_config(checkpoint, name)
    try:
        model = _load(cfg.model, key)  # the trial's own starting model (possibly a dense trial too)
    except SpaTuneError as err:
        problem = str(err).removeprefix(f"{key}: ")
        raise SpaTuneError(f"{key}: {name}: the trial's starting model: {problem}") from None
    state = read_state(checkpoint)
    try:
        restore_model(model, state, checkpoint / STATE_FILE)
    except SpaTuneError:
        raise
    except Exception as err:  # weights of another architecture, ...
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SpaTuneError(f"{checkpoint / STATE_FILE}: cannot load the trial's model ({first_line})") from None
    return model


def _load(name: str, key: str, checkpoint: Path | None = None) -> nn.Module:
    try:
        if checkpoint is None:
            checkpoint = trained_checkpoint(name)
        if checkpoint is None:
            return load_qa_model(name)
        return _load_checkpoint_model(checkpoint, name, key)
    except SpaTuneError as err:
        if str(err).startswith(f"{key}: "):
            raise
        raise _keyed(key, err) from None


def load_trained_qa_model(name: str, key: str = "model") -> nn.Module:
    """A QA model for ``name``: a Hugging Face model, or the weights of a finished dense trial.

    Errors are one line starting with ``key``. The model is a fresh copy, free to be trained.
    """
    return _load(name, key)


def tokenizer_name(model: str, tokenizer: str | None = None) -> str:
    """What to load the tokenizer from: ``tokenizer`` if set, else the Hugging Face model under ``model``."""
    if tokenizer:
        return tokenizer
    try:
        return base_model_name(model)
    except SpaTuneError as err:
        raise _keyed("model", err) from None


def _stamp(source: str) -> tuple:
    """Modification times and sizes of a local model's files, so a rewritten model is loaded again."""
    path = expanded(source)
    if path.is_file():
        st = path.stat()
        return ((path.name, st.st_mtime_ns, st.st_size),)
    if path.is_dir():
        return tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in path.iterdir() if p.is_file()))
    return ()


@functools.lru_cache(maxsize=1)  # one teacher at a time: a different one frees the previous (GPU memory)
def _cached_teacher(name: str, checkpoint: str | None, stamp: tuple, device: str) -> nn.Module:
    model = _load(name, "teacher_name_or_path", Path(checkpoint) if checkpoint else None)
    return model.to(device).eval().requires_grad_(False)


def load_teacher(name: str, device: torch.device | str) -> nn.Module:
    """The distillation teacher ``name`` on ``device``: eval mode, no gradients, loaded once per process.

    Cached by the resolved checkpoint (for a trial) or model, its files' times and the device, so
    trials that name one teacher by trial folder, experiment folder or run id share one copy. Loading
    leaves the random number generators as they were, so a trial is the same whether or not its
    process had the teacher already.
    """
    try:
        checkpoint = trained_checkpoint(name)
    except SpaTuneError as err:
        raise _keyed("teacher_name_or_path", err) from None
    if checkpoint is not None:
        try:
            dense_trial_config(checkpoint, name)  # refused naming the teacher as given, before any loading
        except SpaTuneError as err:
            raise _keyed("teacher_name_or_path", err) from None
        checkpoint = checkpoint.resolve()
        source, stamp = str(checkpoint), _stamp(str(checkpoint / STATE_FILE))
    else:
        local = name != OFFLINE_MODEL_NAME and expanded(name).is_dir()
        source, stamp = (str(expanded(name).resolve()), _stamp(name)) if local else (name, ())
    states = rng_states()
    try:
        return _cached_teacher(source, str(checkpoint) if checkpoint else None, stamp, str(torch.device(device)))
    finally:
        set_rng_states(states)


def clear_teacher_cache() -> None:
    """Forget the cached teacher (its memory is freed once no trial holds it)."""
    _cached_teacher.cache_clear()


def teacher_loads() -> int:
    """How many times this process has loaded a teacher (cache misses)."""
    return _cached_teacher.cache_info().misses
