"""A trial's data: evaluation examples and tokenized features, built here or read from the feature cache.

Without ``feature_cache`` the examples are loaded and tokenized as always. With it, training and
evaluation features are separate cache entries keyed by everything they depend on
(``spa_tune.data.feature_key``); the evaluation examples, which post-processing needs, are loaded
from their source every time (a local file reads in well under a second). Which entries a trial
used, and whether it built them, is written to ``feature_cache.json`` in its output folder
(``spa_tune.trial.records``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import TrialConfig
from ..data.feature_cache import cached_dataset, open_cache
from ..data.feature_key import entry_key, file_source, hub_source, split_description, tokenizer_digest
from ..data.features import build_eval_dataset, build_train_dataset, with_eval_format, with_train_format
from ..data.loading import HUB_SPLITS, load_split, load_squad
from .records import FEATURE_CACHE_RECORD, write_feature_cache_record

RECORD_FILE = FEATURE_CACHE_RECORD  # the name tests and benchmarks import from here
SPLITS = {"train": (build_train_dataset, with_train_format), "eval": (build_eval_dataset, with_eval_format)}


@dataclass
class TrialData:
    """What training and evaluation read."""

    train_features: Any
    eval_examples: Any
    eval_features: Any


def window_of(cfg: TrialConfig) -> dict[str, int]:
    """The tokenisation window settings of a trial."""
    return dict(max_seq_length=cfg.max_seq_length, doc_stride=cfg.doc_stride, max_query_length=cfg.max_query_length)


class SplitExamples:
    """The examples of each split, loaded on first use only (a cache hit never loads local training data)."""

    def __init__(self, cfg: TrialConfig, train_file: str | None, eval_file: str | None):
        self.cfg = cfg
        self.files = {"train": train_file, "eval": eval_file}
        self.hub = None if train_file and eval_file else cfg.dataset
        self._loaded: dict[str, Any] = {}

    def limits(self, split: str) -> dict[str, int | None]:
        """The question and article limits of ``split``."""
        return {"max_samples": getattr(self.cfg, f"max_{split}_samples"),
                "max_articles": getattr(self.cfg, f"max_{split}_articles")}

    def get(self, split: str) -> Any:
        """The split's examples (``datasets.Dataset``), limits applied."""
        if split not in self._loaded:
            limits = self.limits(split)
            self._loaded[split] = load_split(split, self.hub, self.files[split], limits["max_samples"],
                                             limits["max_articles"])
        return self._loaded[split]

    def source(self, split: str) -> dict[str, str]:
        """What the split's features are made from: a file's content, or a hub split's fingerprint."""
        path = self.files[split]
        return file_source(path) if path else hub_source(self.hub, HUB_SPLITS[split], self.get(split))


def built_data(cfg: TrialConfig, tokenizer: Any, train_file: str | None, eval_file: str | None) -> TrialData:
    """Examples loaded and tokenized in this process (no cache)."""
    train_examples, eval_examples = load_squad(
        None if train_file and eval_file else cfg.dataset, train_file, eval_file,
        cfg.max_train_samples, cfg.max_eval_samples, cfg.max_train_articles, cfg.max_eval_articles,
    )
    window = window_of(cfg)
    return TrialData(
        build_train_dataset(train_examples, tokenizer, **window),
        eval_examples,
        build_eval_dataset(eval_examples, tokenizer, **window),
    )


def cached_data(cfg: TrialConfig, tokenizer: Any, train_file: str | None, eval_file: str | None) -> TrialData:
    """Features from ``cfg.feature_cache`` (built and stored there when missing); the record written."""
    cache = open_cache(cfg.feature_cache)
    examples, window = SplitExamples(cfg, train_file, eval_file), window_of(cfg)
    tokenizer_sha = tokenizer_digest(tokenizer)
    features: dict[str, Any] = {}
    record: dict[str, Any] = {"location": cfg.feature_cache}
    for split, (build, formatted) in SPLITS.items():
        description = split_description(split, examples.source(split), examples.limits(split), tokenizer_sha, window)
        key = entry_key(description)
        dataset, built = cached_dataset(
            cache, key, description, lambda build=build, split=split: build(examples.get(split), tokenizer, **window)
        )
        features[split] = formatted(dataset)
        record[split] = {"entry": key, "built": built, "rows": dataset.num_rows}
    output = Path(cfg.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    write_feature_cache_record(output, record)
    return TrialData(features["train"], examples.get("eval"), features["eval"])


def trial_data(cfg: TrialConfig, tokenizer: Any, train_file: str | None, eval_file: str | None) -> TrialData:
    """The trial's features and evaluation examples, through the feature cache when one is set."""
    if cfg.feature_cache:
        return cached_data(cfg, tokenizer, train_file, eval_file)
    return built_data(cfg, tokenizer, train_file, eval_file)
