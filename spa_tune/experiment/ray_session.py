"""Start a local Ray runtime or attach to a running cluster, and always let go of it afterwards."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from ..errors import SpaTuneError

log = logging.getLogger("spa_tune.ray")


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
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"--address {address}" if address else "local Ray"
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpaTuneError(f"{where}: cannot start or reach Ray: {first_line}") from None
    try:
        yield ray.cluster_resources()
    finally:
        ray.shutdown()
