"""Names in an experiment's folder: spa-tune's own files, the trial folders, and remote storage paths.

An experiment folder holds ``space.yaml`` (the space as run), ``experiment.json`` (where its MLflow
runs and Ray Tune state are) and, once it ends, ``results.csv``; each trial writes to
``trial_<id>`` under Ray Tune's experiment path (the same folder, or a URI in storage).
"""

from __future__ import annotations

SPACE_FILE = "space.yaml"
STATE_FILE = "experiment.json"
RESULTS_FILE = "results.csv"


def is_uri(storage_path: str) -> bool:
    """Whether ``storage_path`` names remote storage (``s3://``, ``gs://``, ``file://`` ...)."""
    return "://" in storage_path


def trial_folder_name(trial_id: str) -> str:
    """The folder a trial of an experiment writes to, under the experiment's storage: ``trial_<id>``."""
    return f"trial_{trial_id}"
