"""The checkpoint ``spa-tune export`` reads, when the trial is kept at a URI (``storage_path: s3://...``).

``RUN`` may be the URI of a trial (``s3://bucket/runs/NAME/trial_<id>``: its newest checkpoint) or
of one checkpoint, or the MLflow run id of a trial whose experiment keeps its trials at a URI. The
checkpoint is downloaded into a temporary folder for the export and removed afterwards; anything
else (a folder, a run id of local trials) is located as before.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..layout import is_uri
from ..storage import fetch_checkpoint
from ..trial.locate import RUN_ID, find_checkpoint, trial_location_of_run


def trial_uri(run: str, tracking_uri: str | None) -> str | None:
    """The URI of the trial or checkpoint ``run`` names, or None when it is on this machine's disk."""
    if is_uri(run):
        return None if run.startswith("file://") else run
    if not RUN_ID.match(run) or Path(run).expanduser().exists():
        return None
    from ..tracking.mlflow_runs import given_or_default_tracking_uri

    location = trial_location_of_run(run, given_or_default_tracking_uri(tracking_uri))
    return location if is_uri(location) and not location.startswith("file://") else None


@contextlib.contextmanager
def located_checkpoint(run: str, tracking_uri: str | None = None) -> Iterator[tuple[Path, str]]:
    """The checkpoint folder of ``run`` on this machine and where it came from (a path or a URI)."""
    uri = trial_uri(run, tracking_uri)
    if uri is None:
        local = run.removeprefix("file://") if run.startswith("file://") else run
        checkpoint = find_checkpoint(local, tracking_uri)
        yield checkpoint, str(checkpoint)
        return
    with tempfile.TemporaryDirectory(prefix="spa-tune-export-") as tmp:
        yield fetch_checkpoint(uri, Path(tmp))
