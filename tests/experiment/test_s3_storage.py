"""``storage_path: s3://...`` against a real S3-compatible server (moto) on 127.0.0.1.

An experiment keeps its trials and checkpoints in a bucket and logs to an ``mlflow server`` whose
artifacts go to another bucket (as on a cluster's head); its driver is killed mid-run and
``spa-tune resume`` finishes it from the bucket; ``spa-tune report`` and ``spa-tune export`` then
read the bucket. A missing bucket, refused credentials, an unreachable endpoint and an MLflow
server that cannot reach its bucket are each one line before Ray starts. The secret key never
shows up in any output, log, file, object or run.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from spa_tune.cli import main

from ..cluster.local_cluster import kill_processes
from ..s3server import S3Server
from ..servers import free_port, mlflow_server
from .conftest import write_space

pytestmark = pytest.mark.ray  # drivers with a local Ray of their own

RUNS_BUCKET, ARTIFACTS_BUCKET = "spa-runs", "spa-mlflow"
STORAGE = f"s3://{RUNS_BUCKET}/runs"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """The S3 server with a bucket for the experiments and one for MLflow's artifacts."""
    server = S3Server(tmp_path_factory.mktemp("moto") / "moto.log").start()
    try:
        server.create_bucket(RUNS_BUCKET)
        server.create_bucket(ARTIFACTS_BUCKET)
        server.spa = server.user("spa-tune")  # the experiment's user
        server.mlflow_user = server.user("mlflow")  # the tracking server's own user
        yield server
    finally:
        assert server.stop() == [], "moto's server had to be killed"


@pytest.fixture(scope="module")
def tracking(s3, tmp_path_factory):
    """An ``mlflow server`` with its artifacts in the S3 bucket, as cluster/gpu.yaml starts it on the head."""
    folder = tmp_path_factory.mktemp("mlflow")
    server = mlflow_server(f"sqlite:///{folder / 'mlflow.db'}", free_port(), folder / "server.log", cwd=folder,
                           artifacts=f"s3://{ARTIFACTS_BUCKET}/artifacts", env=s3.env(s3.mlflow_user))
    try:
        server.wait_ready()
        server.store = folder / "mlflow.db"
        yield server
    finally:
        assert server.stop(timeout=60) == [], "the MLflow server had to be killed"


def refused(argv: list[str], capsys) -> str:
    """Run ``spa-tune`` in-process; it must refuse with exit code 2 and one line on stderr; that line."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spa-tune: error: "), captured.err
    return lines[0]


@pytest.fixture
def space(tmp_path, tiny_model_dir):
    """A small space; storage and tracking are given with --set, as on a cluster."""
    return write_space(tmp_path, tiny_model_dir, "s3check", scheduler={"type": "none"})


def test_bad_s3_storage_is_one_line_before_ray(s3, space, tmp_path, monkeypatch, capsys, caplog, no_ray):
    for key, value in s3.env(s3.spa).items():
        monkeypatch.setenv(key, value)
    before = s3.objects(RUNS_BUCKET)
    driver = tmp_path / "driver"
    base = ["--space", str(space), "--set", f"local_dir={driver}"]

    line = refused([*base, "--set", "storage_path=s3://no-such-bucket/runs"], capsys)
    assert line == (f"spa-tune: error: storage_path: s3://no-such-bucket/runs (endpoint {s3.endpoint}): "
                    "bucket 'no-such-bucket' does not exist")

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-4d2a")
    line = refused([*base, "--set", f"storage_path={STORAGE}"], capsys)
    assert line.startswith(f"spa-tune: error: storage_path: {STORAGE} (endpoint {s3.endpoint}): access refused (")
    assert "AWS_SECRET_ACCESS_KEY" in line and "wrong-secret-4d2a" not in line and s3.spa.secret not in line

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.spa.secret)
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)
    line = refused([*base, "--set", f"storage_path={STORAGE}"], capsys)
    assert line.startswith(f"spa-tune: error: storage_path: {STORAGE} (endpoint {closed}): cannot reach the endpoint (")
    assert s3.spa.secret not in line

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    s3.deny(s3.spa.user, "s3:ListBucket", RUNS_BUCKET)  # credentials accepted, the bucket refuses them
    try:
        line = refused([*base, "--set", f"storage_path={STORAGE}"], capsys)
    finally:
        s3.allow_again(s3.spa.user)
    assert line.startswith(f"spa-tune: error: storage_path: {STORAGE} (endpoint {s3.endpoint}): access refused (")
    assert not driver.exists() and s3.objects(RUNS_BUCKET) == before  # nothing created, locally or in the bucket

    # usable storage, credentials in the environment: a warning naming the variable, then Ray would start
    with pytest.raises(AssertionError, match="Ray was used"):
        main([*base, "--set", f"storage_path={STORAGE}"])
    warnings = [r.getMessage() for r in caplog.records if r.name == "spa_tune.storage"]
    assert len(warnings) == 1 and warnings[0].startswith("AWS_SECRET_ACCESS_KEY is set in the environment: Ray Tune")
    assert s3.spa.secret not in caplog.text + "".join(capsys.readouterr()) and not driver.exists()


def test_tracking_server_that_cannot_reach_its_bucket_is_one_line_before_ray(s3, tracking, space, tmp_path,
                                                                           monkeypatch, capsys, no_ray):
    for key, value in s3.env(s3.spa).items():
        monkeypatch.setenv(key, value)
    s3.deny(s3.mlflow_user.user, "s3:ListBucket", ARTIFACTS_BUCKET)  # the server's own credentials are refused
    try:
        line = refused(["--space", str(space), "--set", f"storage_path={STORAGE}", "--set", f"local_dir={tmp_path / 'd'}",
                        "--set", f"mlflow.tracking_uri={tracking.base}"], capsys)
    finally:
        s3.allow_again(s3.mlflow_user.user)
    assert line.startswith(f"spa-tune: error: mlflow.tracking_uri {tracking.base}: the server cannot keep artifacts: "
                           f"Failed to list artifacts in s3://{ARTIFACTS_BUCKET}/artifacts"), line
    assert "Access Denied" in line and s3.mlflow_user.secret not in line
    assert not (tmp_path / "d").exists()
    assert MlflowClient(tracking.base).get_experiment_by_name("s3check") is None


def test_key_that_may_not_write_is_refused_before_any_trial(s3, ray_runtime, space, tmp_path, monkeypatch, capsys):
    for key, value in s3.env(s3.spa).items():  # in-process: no trial starts, Ray's workers never need the key
        monkeypatch.setenv(key, value)
    driver = tmp_path / "driver"
    s3.deny(s3.spa.user, "s3:PutObject", RUNS_BUCKET)  # the bucket answers and lists, but refuses writes
    try:
        line = refused(["--space", str(space), "--set", f"storage_path={STORAGE}", "--set", f"local_dir={driver}"],
                       capsys)
    finally:
        s3.allow_again(s3.spa.user)
    assert line.startswith(f"spa-tune: error: {STORAGE}/s3check/space.yaml: cannot write: access refused ("), line
    assert not (driver / "s3check" / "experiment.json").exists()  # no state: the same command may run again
    assert not s3.objects(RUNS_BUCKET, "runs/s3check/")
    assert s3.spa.secret not in line


def processes_of(ray_tmpdir: Path) -> list[psutil.Process]:
    """Live processes started with ``RAY_TMPDIR=ray_tmpdir``: a driver run by the test and its Ray."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("RAY_TMPDIR") == str(ray_tmpdir) and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def kill_all(processes: list[psutil.Process]) -> None:
    """SIGKILL each process (by pid) and wait until all are gone."""
    alive = kill_processes(processes, timeout=30)
    assert not alive, f"processes still running: {alive}"


def finished_trial_in_bucket(s3, prefix: str) -> str | None:
    """The id of a trial that Ray Tune's state in the bucket records as finished (TERMINATED), or None."""
    for key in s3.objects(RUNS_BUCKET, prefix):
        if key.rsplit("/", 1)[-1].startswith("experiment_state-"):
            state = json.loads(s3.read(RUNS_BUCKET, key))
            for trial_json, _ in state.get("trial_data", []):
                trial = json.loads(trial_json)
                if trial.get("status") == "TERMINATED":
                    return trial["trial_id"]
    return None


def kill_driver_after_first_trial(command: list[str], env: dict, s3, prefix: str) -> tuple[str, str]:
    """Run the driver, SIGKILL it (and its Ray) once the bucket records a finished trial; its id, the output."""
    driver = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    finished, deadline = None, time.time() + 300
    try:
        while finished is None and time.time() < deadline and driver.poll() is None:
            time.sleep(1)
            finished = finished_trial_in_bucket(s3, prefix)
        assert finished and driver.poll() is None, driver.communicate()[0][-3000:] if driver.poll() is not None else "slow"
        os.killpg(driver.pid, signal.SIGKILL)  # the driver's own group; its Ray runs in groups of its own
        output = driver.communicate()[0]
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    kill_all(processes_of(Path(env["RAY_TMPDIR"])))  # the local Ray the killed driver had started
    return finished, output


def files_containing(folder: Path, needle: bytes) -> list[str]:
    """Files under ``folder`` whose bytes contain ``needle``."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


def test_experiment_in_s3_survives_a_killed_driver_and_is_read_back_from_the_bucket(
    s3, tracking, tmp_path, tiny_model_dir, monkeypatch, capsys
):
    name = "s3exp"
    space = write_space(
        # keep_checkpoints 10: Ray Tune saves its experiment state at most every 10 s, so a driver killed
        # within 10 s of a trial's newest checkpoints resumes from an older one, which must still exist
        # (with 1 kept, Tune had deleted it: "Could not recover from checkpoint"; see docs/experiments.md, faults)
        tmp_path, tiny_model_dir, name,
        trial={"num_train_epochs": 4, "generated_train_questions": 640, "keep_checkpoints": 10},
        search={"method": {"type": "grid", "values": ["fine-pruning", "splopa"]}}, searcher={"type": "grid"},
        scheduler={"type": "none"}, max_concurrent_trials=1,
    )
    folder = tmp_path / "driver" / name
    settings = ["--set", f"storage_path={STORAGE}", "--set", f"local_dir={folder.parent}",
                "--set", f"mlflow.tracking_uri={tracking.base}"]
    ray_tmpdir = Path(tempfile.mkdtemp(prefix="spa-s3-"))  # short: Ray's socket paths must stay short
    # the key in a credentials file: Ray Tune copies AWS_SECRET_ACCESS_KEY from the environment into its logs
    credentials = s3.file_env(s3.spa, tmp_path)
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS" and not k.startswith("AWS_")}, **credentials,
           "RAY_TMPDIR": str(ray_tmpdir), "HF_HUB_OFFLINE": "1"}
    prefix = f"runs/{name}/"
    try:
        finished, first_output = kill_driver_after_first_trial(
            [sys.executable, "-m", "spa_tune.cli", "--space", str(space), *settings], env, s3, prefix)
        kept = s3.read(RUNS_BUCKET, f"{prefix}trial_{finished}/result.json")
        assert not (folder / "results.csv").exists()

        resumed = subprocess.run([sys.executable, "-m", "spa_tune.cli", "resume", str(folder)], env=env,
                                 capture_output=True, text=True, timeout=400)
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        _, left = psutil.wait_procs(processes_of(ray_tmpdir), timeout=30)  # Ray's workers exit after their raylet
        assert left == [], "the resumed driver left Ray processes behind"

        objects = s3.objects(RUNS_BUCKET, prefix)
        trials = sorted({key[len(prefix):].split("/")[0] for key in objects if key[len(prefix):].startswith("trial_")})
        assert len(trials) == 2 and f"trial_{finished}" in trials
        for trial in trials:  # checkpoints and the trial's own files are in the bucket
            assert any(k.startswith(f"{prefix}{trial}/checkpoint_") and k.endswith("/trial_state.pt") for k in objects)
            assert f"{prefix}{trial}/metrics.jsonl" in objects
        assert s3.read(RUNS_BUCKET, f"{prefix}trial_{finished}/result.json") == kept  # the finished trial did not rerun
        for copied in ("space.yaml", "experiment.json", "results.csv", "report.md", "pareto.png"):
            assert f"{prefix}{copied}" in objects  # spa-tune's own files beside the trials
        assert s3.read(RUNS_BUCKET, f"{prefix}results.csv") == (folder / "results.csv").read_bytes()
        assert not list(folder.glob("trial_*"))
        # the trials' shared tokenized features are in the bucket too: one entry per split
        assert len([k for k in objects if k.startswith(f"{prefix}feature_cache/") and k.endswith("/manifest.json")]) == 2

        state = json.loads((folder / "experiment.json").read_text())
        client = MlflowClient(tracking.base)
        children = client.search_runs([state["experiment_id"]],
                                      filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{state['parent_run_id']}'")
        assert sorted(c.data.tags["status"] for c in children) == ["completed", "completed"]
        artifacts = s3.objects(ARTIFACTS_BUCKET, "artifacts/")
        for run in [*children, client.get_run(state["parent_run_id"])]:
            assert run.info.artifact_uri.startswith("mlflow-artifacts:")  # the server writes the bucket, not the trial
        run_prefix = f"artifacts/{state['experiment_id']}"
        for child in children:
            for artifact in ("masks.png", "layers/density.csv"):
                assert f"{run_prefix}/{child.info.run_id}/artifacts/{artifact}" in artifacts
        assert f"{run_prefix}/{state['parent_run_id']}/artifacts/results.csv" in artifacts

        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(key, raising=False)
        for key, value in credentials.items():  # report and export run here, reading the bucket
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        assert main(["report", f"{STORAGE}/{name}", "--format", "json", "--plot-dir", str(tmp_path / "plots")]) == 0
        report = json.loads(capsys.readouterr().out)["trials"]
        with open(folder / "results.csv", newline="") as fh:
            local = {row["trial_id"]: row for row in csv.DictReader(fh)}
        assert sorted(r["trial_id"] for r in report) == sorted(t.removeprefix("trial_") for t in trials) == sorted(local)
        run_ids = {c.data.tags["trial_id"]: c.info.run_id for c in children}
        for row in report:  # the table the driver wrote, read back from the bucket, linked to where the trials are
            assert row["status"] == "completed" and row["f1"] == pytest.approx(float(local[row["trial_id"]]["f1"]))
            assert row["trial_folder"] == f"{STORAGE}/{name}/trial_{row['trial_id']}"
            assert row["run_id"] == run_ids[row["trial_id"]]
        assert main(["report", f"{STORAGE}/no-experiment"]) == 2
        assert main(["export", f"{STORAGE}/{name}/trial_none", "--out", str(tmp_path / "none")]) == 2
        errors = capsys.readouterr().err.splitlines()
        assert errors == [f"spa-tune: error: {STORAGE}/no-experiment: no spa-tune experiment there "
                          "(no experiment.json or results.csv)",
                          f"spa-tune: error: {STORAGE}/{name}/trial_none: no trial checkpoint there (checkpoint_*/)"]
        by_method = {c.data.params["method"]: c for c in children}
        splopa = by_method["splopa"].data.tags["trial_id"]
        adapter = tmp_path / "adapter.safetensors"
        splopa_folder = next(row["trial_folder"] for row in report if row["trial_id"] == splopa)
        assert main(["export", splopa_folder, "--adapter-only", "--out", str(adapter)]) == 0
        assert adapter.is_file()
        model = tmp_path / "model"
        assert main(["export", by_method["fine-pruning"].info.run_id, "--tracking-uri", tracking.base,
                     "--out", str(model), "--latency-runs", "0"]) == 0
        fine = by_method["fine-pruning"].data.tags["trial_id"]
        source = json.loads((model / "export.json").read_text())["trial"]["checkpoint"]
        assert source.startswith(f"{STORAGE}/{name}/trial_{fine}/checkpoint_")
        exported_output = capsys.readouterr()

        secret = s3.spa.secret
        for text in (first_output, resumed.stdout, resumed.stderr, exported_output.out, exported_output.err):
            assert secret not in text and "AWS_SECRET_ACCESS_KEY is set" not in text
        needle = secret.encode()
        assert files_containing(folder, needle) == [] and files_containing(ray_tmpdir, needle) == []
        assert needle not in tracking.store.read_bytes()
        for bucket in (RUNS_BUCKET, ARTIFACTS_BUCKET):
            assert [k for k in s3.objects(bucket) if needle in s3.read(bucket, k)] == []
    finally:
        kill_all(processes_of(ray_tmpdir))
        import shutil

        shutil.rmtree(ray_tmpdir, ignore_errors=True)
