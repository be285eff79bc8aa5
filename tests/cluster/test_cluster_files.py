"""Every cluster file is a valid Ray cluster-launcher config for the Ray version spa-tune pins (offline)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_FILES = sorted((ROOT / "cluster").glob("*.yaml"))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def check(config: dict) -> None:
    """What `ray up` checks before touching a cloud: defaults filled in, then Ray's own JSON schema."""
    validate_config(prepare_config(copy.deepcopy(config)))


def test_there_are_cluster_files():
    assert {p.name for p in CLUSTER_FILES} >= {"gpu.yaml", "local.yaml"}


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: p.name)
def test_cluster_file_passes_rays_schema(path):
    check(load(path))


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: p.name)
def test_the_schema_check_rejects_a_broken_copy(path):
    broken = dict(load(path), max_worker=3)  # a typo of max_workers
    with pytest.raises(jsonschema.ValidationError):
        check(broken)


def test_gpu_cluster_runs_the_ray_spa_tune_is_tested_with():
    """The image's Ray is the one installed here (the driver's, which every node must match), within the
    range pyproject.toml allows."""
    config = load(ROOT / "cluster" / "gpu.yaml")
    low, high = re.search(r'"ray\[[a-z,]+\]>=([0-9.]+),<([0-9.]+)"', (ROOT / "pyproject.toml").read_text()).groups()
    version = tuple(int(part) for part in ray.__version__.split(".")[:2])
    assert tuple(int(p) for p in low.split(".")) <= version < tuple(int(p) for p in (high + ".0").split(".")[:2])
    assert config["docker"]["image"] == f"rayproject/ray:{ray.__version__}-py311-gpu"
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"]["GPU"] == 0  # trials never land on the head
    workers = [t for name, t in config["available_node_types"].items() if name != config["head_node_type"]]
    assert workers and all(t["node_config"]["InstanceType"].startswith("g5.") for t in workers)
    (start_mlflow,) = [cmd for cmd in config["head_setup_commands"] if "cluster/mlflow_server.sh" in cmd]
    assert "mlflow_server.sh $(hostname -I" in start_mlflow and "/health" in start_mlflow.split("||")[0]
    assert "pgrep" not in start_mlflow  # pgrep -f would find the shell running this very command
    assert any("pip install" in cmd and "/home/ray/spa-tune" in cmd for cmd in config["setup_commands"])
    assert all("--dashboard-host=127.0.0.1" in cmd for cmd in config["head_start_ray_commands"] if "--head" in cmd)


@pytest.mark.parametrize("path", CLUSTER_FILES, ids=lambda p: p.name)
def test_every_node_starts_ray_with_token_authentication(path):
    config = load(path)
    starts = [c for key in ("head_start_ray_commands", "worker_start_ray_commands") for c in config[key] if "ray start" in c]
    assert len(starts) == 2 and all("RAY_AUTH_MODE=token" in c for c in starts)
    assert any(target.endswith(".ray/auth_token") for target in config["file_mounts"])
