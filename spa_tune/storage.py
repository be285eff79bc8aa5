"""Experiment storage at a URI (``s3://bucket/runs``, ``gs://``, ``file://``), through ``pyarrow.fs``.

Ray Tune keeps an experiment's trials and checkpoints at ``<storage_path>/<name>`` and reaches the
URI with ``pyarrow.fs``; spa-tune uses the same library, so both find the store, region and
credentials the same way: from the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE`` or an instance profile, ``AWS_DEFAULT_REGION``, and ``AWS_ENDPOINT_URL`` or
``AWS_ENDPOINT_URL_S3`` for an S3-compatible store such as MinIO). Nothing here reads, prints or
stores a credential: messages name the URI and the endpoint only.

Here: the check of a storage URI before Ray starts, the copy of spa-tune's own experiment files
(space, state, results, report) beside the trials, and reading those files and a trial's newest
checkpoint back for ``spa-tune report`` and ``spa-tune export``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import SpaTuneError
from .layout import RESULTS_FILE, SPACE_FILE, STATE_FILE, is_uri

# spa-tune's own files of an experiment (written on the driver, in <local_dir>/<name>), copied to the
# experiment's URI so that report and export work from the bucket alone.
START_FILES = (SPACE_FILE, STATE_FILE)
END_FILES = (RESULTS_FILE, "pareto.png", "report.md", "pareto_learned.png")
CHECKPOINT = re.compile(r"^checkpoint_(\d+)$")
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
# Ray Tune copies these from the driver's environment into every trial's runtime environment, and
# Ray's runtime_env_agent.log (in the Ray session's logs) records that environment in full.
PROPAGATED_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")

log = logging.getLogger("spa_tune.storage")


def one_line(err: BaseException) -> str:
    """The first line of an error's text (its type when it has none)."""
    text = str(err).strip()
    return text.splitlines()[0].strip() if text else type(err).__name__


def open_problem(err: Exception) -> str:
    """Why pyarrow could not open a URI: the store did not answer (resolving an S3 bucket's region asks
    it), or pyarrow does not take the URI."""
    if isinstance(err, OSError):
        return access_problem(err)
    return f"not a storage URI pyarrow can open ({one_line(err)})"


def open_uri(uri: str):
    """``(filesystem, path)`` of a storage URI; a URI pyarrow cannot open is a one-line error."""
    import pyarrow.fs

    try:
        return pyarrow.fs.FileSystem.from_uri(uri)
    except Exception as err:  # ArrowInvalid (a ValueError), ArrowNotImplementedError, OSError, ...
        raise SpaTuneError(f"{uri}: {open_problem(err)}") from None


def without_userinfo(url: str) -> str:
    """``url`` without ``user:password@`` (an endpoint is named in messages, never a credential)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}" if parts.port else host))


def endpoint_label(uri: str) -> str:
    """Where requests for an ``s3://`` URI go: `` (endpoint URL)`` from the environment, or `` (AWS S3,
    region R)``; empty for other URIs."""
    if not uri.startswith("s3://"):
        return ""
    for name in ENDPOINT_VARIABLES:
        if os.environ.get(name):
            return f" (endpoint {without_userinfo(os.environ[name])})"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return f" (AWS S3, region {region})" if region else " (AWS S3)"


def access_problem(err: OSError) -> str:
    """What a failed request says about the store, in words, with pyarrow's own reason."""
    reason = one_line(err)
    reason = re.sub(r"^When [^:]*: ", "", reason)  # "When getting information for bucket 'b': ..."
    if "ACCESS_DENIED" in reason or "AccessDenied" in reason or "InvalidAccessKeyId" in reason:
        return (f"access refused ({reason}); check the credentials (~/.aws/credentials or AWS_SHARED_CREDENTIALS_FILE, "
                "AWS_PROFILE, the instance profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    if "NETWORK_CONNECTION" in reason or "curlCode" in reason:
        return f"cannot reach the endpoint ({reason})"
    if "NO_SUCH_BUCKET" in reason or "NoSuchBucket" in reason:
        return f"the bucket does not exist ({reason})"
    return reason


def storage_problem(uri: str) -> str | None:
    """Why the experiment's storage at ``uri`` cannot be used (None when it can).

    For S3 the bucket must exist and answer with these credentials (one ``HeadBucket`` and one
    listing); other file systems must answer a listing of the path. Nothing is written.
    """
    import pyarrow.fs

    try:
        filesystem, path = pyarrow.fs.FileSystem.from_uri(uri)
    except Exception as err:
        return open_problem(err)
    try:
        if isinstance(filesystem, pyarrow.fs.S3FileSystem):
            bucket = path.split("/", 1)[0]
            if filesystem.get_file_info(bucket).type == pyarrow.fs.FileType.NotFound:
                return f"bucket {bucket!r} does not exist"
        filesystem.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    except OSError as err:
        return access_problem(err)
    return None


def check_storage(uri: str, key: str = "storage_path") -> None:
    """Refuse storage that cannot be used, naming ``key``, the URI and the endpoint (one line, exit 2)."""
    problem = storage_problem(uri)
    if problem is not None:
        raise SpaTuneError(f"{key}: {uri}{endpoint_label(uri)}: {problem}")


def secrets_in_environment() -> list[str]:
    """Names of the credential variables set in this environment that Ray Tune hands to every trial."""
    return [name for name in PROPAGATED_SECRETS if os.environ.get(name)]


def check_experiment_storage(storage_path: str) -> None:
    """Before Ray starts: a URI ``storage_path`` must be usable (``check_storage``); credentials in the
    environment are a warning naming the variables (never their values), as Ray writes them into its logs."""
    if is_uri(storage_path):
        check_storage(storage_path)
    secrets = secrets_in_environment()
    if secrets:
        log.warning(
            "%s set in the environment: Ray Tune passes it to every trial in the trial's runtime environment, "
            "which Ray writes in full into its session log runtime_env_agent.log; keep credentials in "
            "~/.aws/credentials (or AWS_SHARED_CREDENTIALS_FILE) or an instance profile instead",
            " and ".join(secrets) + (" are" if len(secrets) > 1 else " is"),
        )


def join(uri: str, *names: str) -> str:
    """``uri`` with ``names`` appended as path parts."""
    return "/".join([uri.rstrip("/"), *names])


def upload_files(folder: Path, uri: str, names: tuple[str, ...]) -> list[str]:
    """Copy the files ``names`` of ``folder`` that exist to ``uri`` (same names); the names copied."""
    import pyarrow.fs

    filesystem, path = open_uri(uri)
    if isinstance(filesystem, pyarrow.fs.LocalFileSystem):  # object stores have no folders to make
        filesystem.create_dir(path, recursive=True)
    copied = []
    for name in names:
        source = Path(folder) / name
        if not source.is_file():
            continue
        try:
            pyarrow.fs.copy_files(str(source), f"{path}/{name}", destination_filesystem=filesystem)
        except OSError as err:
            raise SpaTuneError(f"{join(uri, name)}: cannot write: {access_problem(err)}") from None
        copied.append(name)
    return copied


def list_names(uri: str) -> dict[str, bool]:
    """Entries directly under ``uri``: name -> whether it is a folder (empty when nothing is there)."""
    import pyarrow.fs

    filesystem, path = open_uri(uri)
    try:
        found = filesystem.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    except OSError as err:
        raise SpaTuneError(f"{uri}: cannot list: {access_problem(err)}") from None
    return {info.base_name: info.type == pyarrow.fs.FileType.Directory for info in found}


def download(uri: str, target: Path) -> Path:
    """Copy the file or folder at ``uri`` to ``target`` (a new path); ``target``."""
    import pyarrow.fs

    filesystem, path = open_uri(uri)
    try:
        is_folder = filesystem.get_file_info(path).type == pyarrow.fs.FileType.Directory
        (Path(target) if is_folder else Path(target).parent).mkdir(parents=True, exist_ok=True)  # pyarrow makes none
        pyarrow.fs.copy_files(path, str(target), source_filesystem=filesystem)
    except OSError as err:
        raise SpaTuneError(f"{uri}: cannot read: {access_problem(err)}") from None
    return target


def fetch_experiment_files(uri: str, target: Path) -> Path:
    """spa-tune's own files of the experiment at ``uri`` in ``target/<name>``; that folder.

    The experiment must have been run by spa-tune with ``storage_path`` a URI (its state or its
    results table is there).
    """
    check_storage(uri, key=uri)
    names = list_names(uri)
    if STATE_FILE not in names and RESULTS_FILE not in names:
        raise SpaTuneError(f"{uri}: no spa-tune experiment there (no {STATE_FILE} or results.csv)")
    folder = Path(target) / uri.rstrip("/").rsplit("/", 1)[-1]
    folder.mkdir(parents=True)
    for name in (*START_FILES, *END_FILES):
        if name in names and not names[name]:
            download(join(uri, name), folder / name)
    return folder


def newest_checkpoint_uri(uri: str) -> str:
    """The checkpoint at ``uri``, or the newest ``checkpoint_<n>`` of the trial folder at ``uri``."""
    if CHECKPOINT.match(uri.rstrip("/").rsplit("/", 1)[-1]):
        return uri.rstrip("/")
    numbers = {int(m.group(1)): name for name, folder in list_names(uri).items() if folder and (m := CHECKPOINT.match(name))}
    if not numbers:
        raise SpaTuneError(f"{uri}: no trial checkpoint there (checkpoint_*/)")
    return join(uri, numbers[max(numbers)])


def fetch_checkpoint(uri: str, target: Path) -> tuple[Path, str]:
    """Download the checkpoint named by ``uri`` (a checkpoint, or a trial folder's newest) into ``target``;
    the local folder and the checkpoint's URI."""
    check_storage(uri, key=uri)
    source = newest_checkpoint_uri(uri)
    return download(source, Path(target) / source.rsplit("/", 1)[-1]), source


def check_artifact_store(tracking_uri: str | None) -> None:
    """An MLflow tracking server that cannot reach its artifact store (a bucket) is refused, naming it."""
    from .tracking.artifact_store import artifact_store_problem

    problem = tracking_uri and artifact_store_problem(tracking_uri)
    if problem:
        raise SpaTuneError(f"mlflow.tracking_uri {tracking_uri}: the server cannot keep artifacts: {problem}")

