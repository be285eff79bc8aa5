"""Load SQuAD v1.1: from local files in the official JSON layout or from the Hugging Face hub."""

from __future__ import annotations

from datasets import Dataset

from ..errors import SpaTuneError
from .squad_json import read_squad_json


def _from_file(path: str) -> Dataset:
    return Dataset.from_list(read_squad_json(path))


def _from_hub(name: str, split: str) -> Dataset:
    from datasets import load_dataset

    try:
        return load_dataset(name, split=split)
    except Exception as err:  # the hub raises many kinds (connection, missing repo, missing split)
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SpaTuneError(f"dataset: cannot load {name!r} split {split!r} from the hub: {first_line}") from None


def _head(ds: Dataset, limit: int | None) -> Dataset:
    return ds.select(range(min(limit, len(ds)))) if limit else ds


def load_squad(dataset: str | None, train_file: str | None, eval_file: str | None,
               max_train_samples: int | None = None, max_eval_samples: int | None = None) -> tuple[Dataset, Dataset]:
    """Train and evaluation examples (``id, title, context, question, answers``).

    A local file wins over the hub for its split; the hub's ``train`` and ``validation`` splits
    of ``dataset`` (e.g. ``rajpurkar/squad``) are used otherwise. ``max_*_samples`` keep the first N.
    """
    if (not train_file or not eval_file) and not dataset:
        raise SpaTuneError("dataset: give a hub dataset or both train_file and eval_file")
    train = _from_file(train_file) if train_file else _from_hub(dataset, "train")
    evaluation = _from_file(eval_file) if eval_file else _from_hub(dataset, "validation")
    return _head(train, max_train_samples), _head(evaluation, max_eval_samples)
