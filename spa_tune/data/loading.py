"""Load SQuAD v1.1: from local files in the official JSON layout or from the Hugging Face hub."""

from __future__ import annotations

from datasets import Dataset

from ..errors import SpaTuneError
from .squad_json import read_squad_json

REQUIRED_COLUMNS = ("id", "context", "question", "answers")
HUB_SPLITS = {"train": "train", "eval": "validation"}


def _from_file(path: str) -> Dataset:
    """Examples of a local SQuAD JSON file (checked by ``read_squad_json``)."""
    return Dataset.from_list(read_squad_json(path))


def _from_hub(name: str, split: str) -> Dataset:
    """One split of a hub data set; any failure becomes a one-line error naming it."""
    from datasets import load_dataset

    try:
        ds = load_dataset(name, split=split)
    except Exception as err:  # the hub raises many kinds (connection, missing repo, missing split)
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SpaTuneError(f"dataset: cannot load {name!r} split {split!r} from the hub: {first_line}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in ds.column_names]
    if missing:
        raise SpaTuneError(f"dataset: {name!r} split {split!r} lacks the SQuAD column(s) {', '.join(missing)}")
    return ds


def first_articles(ds: Dataset, limit: int | None) -> Dataset:
    """The questions of the first ``limit`` articles, by title in order of first appearance (all when None).

    A title met again later in the file counts as the article it first named.
    """
    if limit is None:
        return ds
    kept: set[str] = set()
    rows = []
    for i, title in enumerate(ds["title"]):
        if title not in kept and len(kept) >= limit:
            continue
        kept.add(title)
        rows.append(i)
    return ds if len(rows) == len(ds) else ds.select(rows)


def _head(ds: Dataset, limit: int | None) -> Dataset:
    """The first ``limit`` examples (all of them when ``limit`` is None)."""
    if limit is None or limit >= len(ds):
        return ds
    return ds.select(range(max(limit, 0)))


def load_squad(dataset: str | None, train_file: str | None, eval_file: str | None,
               max_train_samples: int | None = None, max_eval_samples: int | None = None,
               max_train_articles: int | None = None, max_eval_articles: int | None = None) -> tuple[Dataset, Dataset]:
    """Train and evaluation examples (``id, title, context, question, answers``).

    A local file wins over the hub for its split; the hub's ``train`` and ``validation`` splits
    of ``dataset`` (e.g. ``rajpurkar/squad``) are used otherwise. ``max_*_articles`` keep the
    questions of the first N articles, then ``max_*_samples`` the first N questions.
    """
    if (not train_file or not eval_file) and not dataset:
        raise SpaTuneError("dataset: give a hub dataset or both train_file and eval_file")
    train = _from_file(train_file) if train_file else _from_hub(dataset, HUB_SPLITS["train"])
    evaluation = _from_file(eval_file) if eval_file else _from_hub(dataset, HUB_SPLITS["eval"])
    return (
        _head(first_articles(train, max_train_articles), max_train_samples),
        _head(first_articles(evaluation, max_eval_articles), max_eval_samples),
    )


def load_eval_split(dataset: str | None, eval_file: str | None, max_eval_samples: int | None = None,
                    max_eval_articles: int | None = None) -> Dataset:
    """Only the evaluation examples: ``eval_file`` if given, else the hub's validation split."""
    if not eval_file and not dataset:
        raise SpaTuneError("dataset: give a hub dataset or an eval_file")
    evaluation = _from_file(eval_file) if eval_file else _from_hub(dataset, HUB_SPLITS["eval"])
    return _head(first_articles(evaluation, max_eval_articles), max_eval_samples)


def load_split(split: str, dataset: str | None, file: str | None, max_samples: int | None = None,
               max_articles: int | None = None) -> Dataset:
    """One split's examples, ``train`` or ``eval``: ``file`` if given, else that split of hub ``dataset``."""
    if not file and not dataset:
        raise SpaTuneError(f"dataset: give a hub dataset or the {split}_file")
    examples = _from_file(file) if file else _from_hub(dataset, HUB_SPLITS[split])
    return _head(first_articles(examples, max_articles), max_samples)
