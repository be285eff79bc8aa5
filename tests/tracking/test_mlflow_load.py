"""The head's MLflow server, started by the same script as on the cluster, under 32 trials logging at once.

Every metric value (key, step, value) must arrive exactly once in every trial's run: none lost,
none stored twice by a retried request, and no "database is locked" anywhere.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from spa_tune.tracking.mlflow_runs import STEP_METRICS, start_parent_run
from tests.servers import group_members
from tests.tracking.head_server import ROOT, start_head_server
from tests.tracking.load_loggers import evaluation, trial_id

LOGGERS, EVALUATIONS, INTERVAL, EVAL_EVERY = 32, 50, 2.0, 100
LOCKED = "database is locked"


def expected_values(logger: int) -> collections.Counter:
    """(key, step, value) of every metric logger ``logger`` sends, each once."""
    counts = collections.Counter()
    for index in range(EVALUATIONS):
        metrics = evaluation(logger, index, EVAL_EVERY)
        counts.update((key, metrics["step"], float(metrics[key])) for key in STEP_METRICS)
    return counts


def stored_values(client: MlflowClient, run_id: str) -> collections.Counter:
    """(key, step, value) of every metric value the store holds for a run, with repeats."""
    return collections.Counter(
        (key, m.step, m.value) for key in STEP_METRICS for m in client.get_metric_history(run_id, key)
    )


def stop_group(process: subprocess.Popen) -> list[int]:
    """SIGTERM the loggers' process group, SIGKILL what is left after 10 s; the pids that were left."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return []
    deadline = time.time() + 10
    while group_members(process.pid) and time.time() < deadline:
        process.poll()
        time.sleep(0.2)
    left = group_members(process.pid)
    if left:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    return left


@pytest.mark.slow
def test_32_trials_logging_at_once_reach_the_heads_server_exactly_once(tmp_path):
    out = tmp_path / "loggers"
    out.mkdir()
    server = start_head_server(tmp_path)
    loggers = None
    try:
        server.wait_ready()
        runs = start_parent_run(server.base, "load", "load", {"loggers": LOGGERS}, None)
        with open(tmp_path / "launcher.log", "w") as log:
            loggers = subprocess.Popen(
                [sys.executable, "-m", "tests.tracking.load_loggers", "--tracking-uri", server.base,
                 "--experiment-id", runs.experiment_id, "--parent-run-id", runs.parent_run_id, "--out", str(out),
                 "--go", str(out / "go"), "--loggers", str(LOGGERS), "--evaluations", str(EVALUATIONS),
                 "--interval", str(INTERVAL), "--eval-every", str(EVAL_EVERY)],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.time() + 90
        while len(list(out.glob("*/ready"))) < LOGGERS and time.time() < deadline and loggers.poll() is None:
            time.sleep(0.2)
        assert len(list(out.glob("*/ready"))) == LOGGERS, (tmp_path / "launcher.log").read_text()[-3000:]
        began = time.time()
        (out / "go").touch()
        loggers.wait(timeout=EVALUATIONS * INTERVAL + 150)
        wall = time.time() - began
        errors = "".join(p.read_text() for p in sorted(out.glob("logger_*.err")))
        assert loggers.returncode == 0, (tmp_path / "launcher.log").read_text()[-3000:] + errors[-3000:]
        summaries = [json.loads(p.read_text()) for p in sorted(out.glob("logger_*.json"))]

        client = MlflowClient(tracking_uri=server.base)
        sent = received = duplicates = lost = 0
        for summary in summaries:
            (run,) = client.search_runs([runs.experiment_id], filter_string=f"tags.trial_id = '{trial_id(summary['logger'])}'")
            assert run.info.run_id == summary["run_id"]
            expected, stored = expected_values(summary["logger"]), stored_values(client, run.info.run_id)
            sent += sum(expected.values())
            received += sum(stored.values())
            duplicates += sum(n - 1 for n in stored.values() if n > 1)
            lost += sum(1 for value in expected if value not in stored)
            assert set(stored) <= set(expected), f"run {summary['logger']} holds values nobody sent"
            assert [a.path for a in client.list_artifacts(run.info.run_id, "layers")] == ["layers/density.csv"]
        server_log = (tmp_path / "server.log").read_text()
        figures = {
            "loggers": len(summaries), "evaluations": sum(s["sent"] for s in summaries), "metric_values_sent": sent,
            "received": received, "duplicates": duplicates, "lost": lost,
            "locked_in_server_log": server_log.count(LOCKED), "locked_in_loggers": errors.count(LOCKED),
            "send_failures": sum(len(s["send_failures"]) for s in summaries),
            "send_seconds_median": sorted(s["send_seconds_median"] for s in summaries)[len(summaries) // 2],
            "send_seconds_max": max(s["send_seconds_max"] for s in summaries), "wall_s": round(wall, 1),
        }
        print("mlflow load:", json.dumps(figures))
        assert len(summaries) == LOGGERS and all(s["unsent"] == 0 for s in summaries)
        assert (lost, duplicates, received) == (0, 0, LOGGERS * EVALUATIONS * len(STEP_METRICS)), figures
        assert figures["locked_in_server_log"] == figures["locked_in_loggers"] == 0, figures
        # a failed send is resent by the trial's queue (the checks above count what arrived), but none may be
        # a lock, nor a request that waited out the server's connection pool (the script runs without one)
        assert not [f for s in summaries for f in s["send_failures"] if LOCKED in f or "QueuePool limit" in f], figures
    finally:
        left = stop_group(loggers) if loggers is not None else []
        left += server.stop(timeout=60)  # a starved machine stops 4 workers slowly
    assert not left, f"processes still running after the test: {left}"
