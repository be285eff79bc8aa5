"""Shared fixtures: a tiny randomly initialised BERT for QA saved as a local model folder."""

from __future__ import annotations

import pytest
import torch

from spa_tune.model.loading import load_tokenizer

# Tiny models gain nothing from intra-op threads, and OpenMP threads that spin at every small op
# slow a run down many times over when another process competes for the two cores.
torch.set_num_threads(1)

TINY_CONFIG = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,
    max_position_embeddings=256,
)


def tiny_bert(seed: int = 0):
    """A randomly initialised BertForQuestionAnswering, hidden 64, 2 layers."""
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(seed)
    return BertForQuestionAnswering(BertConfig(vocab_size=30522, **TINY_CONFIG))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """Folder with a tiny BERT QA model and the bert-base-uncased vocabulary tokenizer."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    tiny_bert().save_pretrained(folder)
    load_tokenizer("minilm").save_pretrained(folder)
    return str(folder)


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if anything tries to start, reach or use Ray (a session may already run one)."""
    import ray

    import spa_tune.experiment.run as experiment_run

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was used for bad input")

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(experiment_run, "ray_session", refuse)
