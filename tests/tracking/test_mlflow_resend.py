"""An evaluation whose answer is lost after the head's server stored it is sent again and stored once.

A trial's queue (and MLflow's own HTTP retries) resend a request whose answer never came. The
server may have committed it already; the resend must then add nothing. That holds because an
evaluation's timestamp is fixed when the trial takes it, and MLflow's SQL stores key a metric value
by (run, key, step, timestamp, value): an identical value logged again is recognised and skipped.
"""

from __future__ import annotations

import collections
import json
import time

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from spa_tune.experiment.trainable import log_evaluation
from spa_tune.tracking.buffered import TRIAL_HTTP_RETRIES, BufferedLogger
from spa_tune.tracking.mlflow_runs import STEP_METRICS, TrialRun, start_parent_run
from tests.tracking.answer_dropping_proxy import AnswerDroppingProxy
from tests.tracking.head_server import start_head_server
from tests.tracking.load_loggers import evaluation

DROPS = 6  # more than one call's own retries (MLFLOW_HTTP_REQUEST_MAX_RETRIES=3): the queue resends too


def logs_metrics(path: str, body: bytes) -> bool:
    """Whether a request is a log-batch carrying metric values (params and tags pass untouched)."""
    return path.endswith("/runs/log-batch") and bool(json.loads(body or b"{}").get("metrics"))


@pytest.mark.slow
def test_a_resent_evaluation_whose_answer_was_lost_is_stored_once(tmp_path, monkeypatch, caplog):
    for name, value in TRIAL_HTTP_RETRIES.items():  # as a trial sets them (use_short_http_retries)
        monkeypatch.setenv(name, value)
    server = start_head_server(tmp_path)
    proxy = None
    try:
        server.wait_ready()
        proxy = AnswerDroppingProxy(server.port, logs_metrics, drops=DROPS)
        runs = start_parent_run(proxy.base, "resend", "resend", {}, None)
        run = TrialRun.open(runs, "resend_00000", "resend", {"method": "splopa"}, {})
        queue = BufferedLogger(lambda record: log_evaluation(run, record), tmp_path, retry_seconds=1.0)
        for index in range(3):
            queue.submit({"metrics": evaluation(0, index, 100), "timestamp_ms": int(time.time() * 1000), "masks": None})
        assert queue.close(timeout=120) == 0
        assert "MLflow unreachable at step 100 (" in caplog.text  # the queue's one warning names the evaluation
        assert proxy.dropped == DROPS and proxy.matched >= DROPS + 3  # every lost answer was followed by a resend

        client = MlflowClient(tracking_uri=server.base)
        stored = collections.Counter(
            (key, m.step, m.value) for key in STEP_METRICS for m in client.get_metric_history(run.run_id, key)
        )
        expected = {(key, m["step"], float(m[key])) for m in (evaluation(0, i, 100) for i in range(3)) for key in STEP_METRICS}
        assert set(stored) == expected and set(stored.values()) == {1}

        # the fixed timestamp is what makes it safe: the same value at another time is a second entry
        (f1,) = [m for m in client.get_metric_history(run.run_id, "f1") if m.step == 100]
        client.log_batch(run.run_id, metrics=[Metric("f1", f1.value, f1.timestamp + 1, 100)])
        assert len([m for m in client.get_metric_history(run.run_id, "f1") if m.step == 100]) == 2
    finally:
        if proxy is not None:
            proxy.close()
        left = server.stop(timeout=60)
    assert not left, f"mlflow server processes still running: {left}"
