"""Shared fixtures: a tiny BERT for QA as a local model folder, a real local Ray runtime, and one
finished tiny experiment (two trials) for the tests that only read an experiment's results."""

from __future__ import annotations

import os
from pathlib import Path

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has exited; it only waits for its parent to reap it
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="session")
def ray_runtime():
    """Start a local Ray (2 CPUs) once; shut it down and check its processes are gone."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    node = ray._private.worker._global_node
    pids = [info.process.pid for infos in node.all_processes.values() for info in infos]
    yield ray
    ray.shutdown()
    left = [pid for pid in pids if _alive(pid)]
    assert not left, f"Ray processes still running after shutdown: {left}"


RAY_FIXTURES = {"ray_runtime"}  # and every fixture built on it, such as finished_experiment


def pytest_collection_modifyitems(config, items):
    """Mark what needs Ray: tests that use the session's Ray runtime (``ray``), and the multi-node
    cluster tests (``cluster`` and ``ray``); ``make test-fast`` deselects both."""
    for item in items:
        if "cluster" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.ray)
        elif RAY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ray)


@pytest.fixture(autouse=True)
def _ray_only_where_marked(request, monkeypatch):
    """Under ``make test-fast`` (SPA_TUNE_TESTS_WITHOUT_RAY=1) a test not marked ``ray`` that starts Ray
    fails, naming the marker, so the fast suite never silently starts a cluster."""
    if os.environ.get("SPA_TUNE_TESTS_WITHOUT_RAY") != "1" or request.node.get_closest_marker("ray"):
        return
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("this test starts Ray: mark it with @pytest.mark.ray")

    monkeypatch.setattr(ray, "init", refuse)


FINISHED_NAME = "finished-tiny"  # the experiment's name, and its MLflow experiment's name


@pytest.fixture(scope="session")
def finished_experiment(ray_runtime, tmp_path_factory, tiny_model_dir) -> Path:
    """Folder of a finished tiny experiment: a grid over method (fine-pruning, splopa), both completed.

    Run once per test session on the real local Ray; its MLflow store is ``mlflow.db`` in the folder.
    Tests must only read it (copy the folder to change anything).
    """
    from spa_tune.experiment.run import run_experiment
    from spa_tune.spec.load import load_space

    from .experiment.conftest import write_space

    base = tmp_path_factory.mktemp("finished")
    path = write_space(
        base, tiny_model_dir, FINISHED_NAME,
        trial={"num_train_epochs": 2},
        search={"method": {"type": "grid", "values": ["fine-pruning", "splopa"]}},
        searcher={"type": "grid"},
        scheduler={"type": "none"},
        resources={"cpu": 1, "gpu": 0},
        max_concurrent_trials=2,
    )
    outcome = run_experiment(load_space(path), str(path))
    assert sorted(row["method"] for row in outcome.rows) == ["fine-pruning", "splopa"]
    assert all(row["status"] == "completed" for row in outcome.rows), outcome.rows
    return outcome.folder
