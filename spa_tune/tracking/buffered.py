"""Send a trial's evaluations to MLflow from a background thread, so training never waits for the server.

Evaluations are queued in order and sent one by one. While the tracking server cannot be reached
they stay queued (with one warning per outage) and go out when it answers again. What is still
unsent when the trial ends is written to ``mlflow_unsent.jsonl`` in the trial folder with a warning:
nothing is lost silently (the same values are also in ``metrics.jsonl`` and Ray Tune's results).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("spa_tune.tracking")
UNSENT_FILE = "mlflow_unsent.jsonl"


# A trial's queue resends what did not arrive, so one MLflow call need not retry for minutes (its
# default): three tries with a short back-off keep each call brief.
TRIAL_HTTP_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def use_short_http_retries() -> None:
    """Set MLflow's client retries of this process to ``TRIAL_HTTP_RETRIES``; the user's own settings win."""
    for name, value in TRIAL_HTTP_RETRIES.items():
        os.environ.setdefault(name, value)


def _step_of(item: dict[str, Any]) -> Any:
    """The step of a queued item: its own ``step``, or that of its ``metrics`` (a trial's evaluation record)."""
    return item.get("step", (item.get("metrics") or {}).get("step"))


class BufferedLogger:
    """A queue of evaluations and the thread that sends them with ``send(metrics)``."""

    def __init__(self, send: Callable[[dict[str, Any]], None], trial_dir: Path, retry_seconds: float = 2.0):
        self.send = send
        self.trial_dir = Path(trial_dir)
        self.retry_seconds = retry_seconds
        self.pending: deque[dict[str, Any]] = deque()
        self.sent = 0
        self._wake = threading.Condition()
        self._closing = False
        self._outage_since: float | None = None
        self._deadline = float("inf")  # set by close(): how long to keep retrying an away server
        self._thread = threading.Thread(target=self._run, name="spa-tune-mlflow", daemon=True)
        self._thread.start()

    def submit(self, metrics: dict[str, Any]) -> None:
        """Queue one evaluation's metrics (returns at once)."""
        with self._wake:
            self.pending.append(dict(metrics))
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self.pending and not self._closing:
                    self._wake.wait()
                if not self.pending:
                    return
                item = self.pending[0]
            try:
                self.send(item)
            except Exception as err:  # the server is away: keep the item, try again later
                if self._outage_since is None:
                    self._outage_since = time.time()
                    log.warning("MLflow unreachable at step %s (%s); evaluations are kept and sent when it answers",
                                _step_of(item), str(err).splitlines()[0] if str(err) else type(err).__name__)
                with self._wake:
                    if time.time() >= self._deadline:  # only finite once close() was called
                        return
                    self._wake.wait(self.retry_seconds)
                continue
            if self._outage_since is not None:
                log.warning("MLflow answers again after %.0f s; sending the kept evaluations", time.time() - self._outage_since)
                self._outage_since = None
            with self._wake:
                self.pending.popleft()
                self.sent += 1

    def close(self, timeout: float = 60.0) -> int:
        """Wait up to ``timeout`` seconds for the queue to drain; keep what is left in a file. Returns that count."""
        with self._wake:
            self._deadline = time.time() + timeout
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout + 5.0)
        with self._wake:
            left = list(self.pending)
        if left:
            with open(self.trial_dir / UNSENT_FILE, "a") as fh:
                for item in left:
                    fh.write(json.dumps(item, default=str) + "\n")
            log.warning("%d evaluation(s) could not be sent to MLflow; they are in %s", len(left), self.trial_dir / UNSENT_FILE)
        return len(left)
