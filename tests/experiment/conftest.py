"""A real local Ray runtime shared by the experiment tests, and tiny search spaces for it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

# Trials of the tiny model: a few hundred generated questions, four short epochs.
TINY_TRIAL = dict(
    dataset="generated",
    generated_train_questions=320,
    generated_eval_questions=60,
    max_seq_length=64,
    doc_stride=16,
    max_query_length=32,
    per_gpu_train_batch_size=32,
    per_gpu_eval_batch_size=64,
    num_train_epochs=4,
    learning_rate=3e-3,
    mask_scores_learning_rate=1e-2,
    adapter_learning_rate=3e-3,
    pruning_method="topK",
    initial_threshold=1.0,
    final_threshold=0.5,
    warmup_steps=4,
    initial_warmup=1,
    final_warmup=2,
    eval_every=10,
    keep_checkpoints=1,
    num_splopa_prototypes=8,
    splopa_prototype_rank=2,
)


def write_space(folder: Path, model_dir: str, name: str, **sections) -> Path:
    """A space file for the tiny model under ``folder`` (experiments go to ``folder/runs``)."""
    trial = dict(TINY_TRIAL, model=model_dir, **sections.pop("trial", {}))
    space = dict(name=name, trial=trial, storage_path=str(folder / "runs"), **sections)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


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
