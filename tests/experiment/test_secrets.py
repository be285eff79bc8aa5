"""No credential from the environment ends up in a finished experiment's folder, MLflow store or output."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .conftest import write_space

pytestmark = pytest.mark.ray  # its own driver and local Ray, in a subprocess

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "planted-aws-secret-5f1e9c",
    "MLFLOW_TRACKING_PASSWORD": "planted-mlflow-password-a81d",
    "HF_TOKEN": "hf_plantedTokenValue7c2b",
    "SPA_TUNE_TEST_SECRET": "planted-project-secret-09aa",
}


def files_containing(folder, needle: bytes) -> list[str]:
    """Every file under ``folder`` (the SQLite store and artifacts included) whose bytes contain ``needle``."""
    return [str(path) for path in folder.rglob("*") if path.is_file() and needle in path.read_bytes()]


def test_planted_secrets_appear_in_no_file_param_tag_or_log(tmp_path, tiny_model_dir):
    space = write_space(
        tmp_path, tiny_model_dir, "secrets",
        trial={"num_train_epochs": 1},
        search={"method": {"type": "grid", "values": ["fine-pruning", "splopa"]}},
        searcher={"type": "grid"}, scheduler={"type": "none"}, max_concurrent_trials=2,
    )
    env = {**os.environ, **SECRETS, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(  # its own driver and local Ray, both started with the secrets in the environment
        [sys.executable, "-m", "spa_tune.cli", "--space", str(space)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    folder = tmp_path / "runs" / "secrets"
    assert (folder / "mlflow.db").is_file() and (folder / "results.csv").is_file()
    for name, value in SECRETS.items():
        assert value not in done.stdout and value not in done.stderr, f"{name} printed"
        assert files_containing(folder, value.encode()) == [], f"{name} written"
