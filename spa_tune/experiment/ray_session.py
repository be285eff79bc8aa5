"""Start a local Ray runtime or attach to a running cluster, and always let go of it afterwards."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from ..errors import SpaTuneError

log = logging.getLogger("spa_tune.ray")


def error_summary(err: BaseException) -> str:
    """One line for a failed ``ray.init``: its first line, plus the cause when that line only introduces it.

    Ray Client reports a server-side failure as "Initialization failure from server:" followed by
    the server's traceback; the traceback's last line is what went wrong.
    """
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[-1]}"
    return lines[0]


# Ray Client starts a server of its own for every client; now and then that start fails on a busy
# head ("Initialization failure from server"), and a second request gets a fresh one.
CLIENT_ATTEMPTS = 3


def attach(address: str, attempts: int = CLIENT_ATTEMPTS) -> None:
    """``ray.init`` on a running cluster; a ``ray://`` address is tried again when the head's client server fails."""
    import ray

    for attempt in range(1, attempts + 1):
        try:
            ray.init(address=address, logging_level=logging.WARNING)
            return
        except ConnectionError as err:
            if not address.startswith("ray://") or attempt == attempts or "Initialization failure" not in str(err):
                raise
            log.warning("--address %s: the head's Ray Client server failed to start (attempt %d of %d); trying again",
                        address, attempt, attempts)
            ray.shutdown()


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[dict]:
    """Ray for the duration of an experiment.

    ``address`` (or ``RAY_ADDRESS``) attaches to an existing cluster (``auto`` or ``host:port``);
    without one a local runtime is started and shut down at the end.
    Yields the cluster's resources.
    """
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        yield ray.cluster_resources()
        return
    try:
        if address:
            attach(address)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"--address {address}" if address else "local Ray"
        raise SpaTuneError(f"{where}: cannot start or reach Ray: {error_summary(err)}") from None
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()
