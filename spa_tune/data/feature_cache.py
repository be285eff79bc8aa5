"""The feature cache: tokenized features stored once in a folder or URI and read by every trial.

An entry is a folder named by its key (``feature_key.entry_key``) that holds the features as one
zstd-compressed Arrow IPC stream, named by the SHA-256 of its bytes, and ``manifest.json``, which
names that file with its size and checksum. A writer puts the data under a temporary name of its
own, moves it to its final name, and publishes the manifest last (also written under a temporary
name and moved), so a reader finds either no entry or a complete one. Writers of the same key on
several nodes each use their own temporary names; the last manifest moved in place wins. A reader
trusts an entry only when its file matches the manifest; anything else (data without a manifest,
a truncated or altered file, a manifest that does not parse) is logged and built again.

Local folders and URIs (``file://``, ``s3://``, ...) share one code path through ``pyarrow.fs``,
the file systems Ray Tune uses for ``storage_path``; S3 takes its endpoint, region and
credentials from the environment (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID`` ...).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyarrow import fs as pafs

from ..errors import SpaTuneError

log = logging.getLogger(__name__)

KEY = "feature_cache"
MANIFEST = "manifest.json"
DATA_SUFFIX = ".arrow"
TMP_SUFFIX = ".tmp"
COMPRESSION = "zstd"
# Another writer's files younger than this may belong to a build still publishing: never removed.
STALE_SECONDS = 3600.0
MANIFEST_FIELDS = ("key", "file", "size", "sha256")


class UntrustedEntry(Exception):
    """An entry whose files do not match its manifest (or have none): it is rebuilt."""


@dataclass(frozen=True)
class FeatureCache:
    """An open cache: the location as given (for messages), its file system and root path there."""

    location: str
    fs: Any
    root: str

    def path(self, *parts: str) -> str:
        """Path of ``parts`` under the cache's root, in the file system's own notation."""
        return "/".join([self.root.rstrip("/"), *parts])


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def resolve_location(location: str) -> tuple[Any, str]:
    """File system and root path of a folder (relative to the working folder) or a URI."""
    if "://" in location:
        return pafs.FileSystem.from_uri(location)
    return pafs.LocalFileSystem(), str(Path(location).expanduser().resolve())


def _usable(filesystem: Any, root: str, create: bool) -> str | None:
    info = filesystem.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        if not create:
            return None
        filesystem.create_dir(root, recursive=True)
    elif info.type != pafs.FileType.Directory:
        return "not a folder"
    filesystem.get_file_info(pafs.FileSelector(root))  # what a reader does: list it
    return None


def location_problem(location: str, create: bool = False) -> str | None:
    """Why ``location`` cannot hold a feature cache, or None; a missing folder is made with ``create``
    (without it, a missing folder is no problem: the first trial makes it)."""
    try:
        return _usable(*resolve_location(location), create)
    except (OSError, ValueError, pa.ArrowException) as err:
        return _first_line(err)


def open_cache(location: str) -> FeatureCache:
    """The cache at ``location``, made if missing; one line naming the key and location when unusable."""
    try:
        filesystem, root = resolve_location(location)
        problem = _usable(filesystem, root, create=True)
    except (OSError, ValueError, pa.ArrowException) as err:
        problem = _first_line(err)
    if problem is not None:
        raise SpaTuneError(f"{KEY}: {location}: {problem}")
    return FeatureCache(location, filesystem, root)


def to_arrow_bytes(dataset: Any) -> pa.Buffer:
    """A ``datasets.Dataset``'s rows as one compressed Arrow IPC stream that keeps its features."""
    if dataset._indices is not None:  # a selection of rows: write the rows it selects
        dataset = dataset.flatten_indices(keep_in_memory=True)
    table = dataset.data.table.replace_schema_metadata(dataset.features.arrow_schema.metadata)
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=COMPRESSION)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_arrow_bytes(data: pa.Buffer) -> Any:
    """The ``datasets.Dataset`` of ``to_arrow_bytes`` (in memory, no format set)."""
    from datasets import Dataset

    return Dataset.from_buffer(data)


def _read(filesystem: Any, path: str) -> pa.Buffer | None:
    """A file's bytes, or None when it does not exist."""
    if filesystem.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with filesystem.open_input_stream(path) as stream:
        return stream.read_buffer()


def read_manifest(cache: FeatureCache, key: str) -> dict[str, Any] | None:
    """The entry's manifest; None when it has none; ``UntrustedEntry`` when it does not parse."""
    text = _read(cache.fs, cache.path(key, MANIFEST))
    if text is None:
        return None
    try:
        manifest = json.loads(text.to_pybytes())
    except ValueError:
        raise UntrustedEntry("its manifest is not JSON") from None
    if not isinstance(manifest, dict) or any(field not in manifest for field in MANIFEST_FIELDS):
        raise UntrustedEntry(f"its manifest lacks one of {', '.join(MANIFEST_FIELDS)}")
    name = str(manifest["file"])
    if manifest["key"] != key or "/" in name or not name.endswith(DATA_SUFFIX):
        raise UntrustedEntry("its manifest names another entry or file")
    return manifest


def read_checked(cache: FeatureCache, key: str, manifest: dict[str, Any]) -> pa.Buffer:
    """The data file a manifest names, once its size and SHA-256 match it."""
    name = manifest["file"]
    data = _read(cache.fs, cache.path(key, name))
    if data is None:
        raise UntrustedEntry(f"{name} is missing")
    if data.size != manifest["size"]:
        raise UntrustedEntry(f"{name} has {data.size} bytes, its manifest says {manifest['size']}")
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        raise UntrustedEntry(f"{name} does not match its manifest's SHA-256")
    return data


def _has_files(cache: FeatureCache, key: str) -> bool:
    try:
        return bool(cache.fs.get_file_info(pafs.FileSelector(cache.path(key), allow_not_found=True)))
    except OSError:
        return False


def load_entry(cache: FeatureCache, key: str) -> Any | None:
    """The features of entry ``key``; None when there is none or it is not trusted (a warning says why)."""
    try:
        manifest = read_manifest(cache, key)
        if manifest is None:
            if _has_files(cache, key):
                log.warning("%s: entry %s has no manifest (a build that did not finish); building it again",
                            KEY, cache.path(key))
            return None
        dataset = from_arrow_bytes(read_checked(cache, key, manifest))
        if dataset.num_rows != manifest.get("rows", dataset.num_rows):
            raise UntrustedEntry(f"it holds {dataset.num_rows} rows, its manifest says {manifest['rows']}")
        return dataset
    except (UntrustedEntry, OSError, pa.ArrowException) as err:
        log.warning("%s: entry %s is not trusted (%s); building it again", KEY, cache.path(key), _first_line(err))
        return None


def _put(filesystem: Any, path: str, data: bytes | pa.Buffer) -> None:
    """Write ``data`` under a temporary name of this writer's, then move it to ``path``."""
    tmp = f"{path}.{uuid.uuid4().hex[:12]}{TMP_SUFFIX}"
    try:
        with filesystem.open_output_stream(tmp) as out:
            out.write(data)
        filesystem.move(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            filesystem.delete_file(tmp)
        raise


def remove_leftovers(cache: FeatureCache, key: str, keep: str) -> None:
    """Delete the entry's other data and temporary files that are older than ``STALE_SECONDS``."""
    try:
        infos = cache.fs.get_file_info(pafs.FileSelector(cache.path(key)))
        now_ns = time.time_ns()
        for info in infos:
            if info.type != pafs.FileType.File or info.base_name in (keep, MANIFEST):
                continue
            if info.mtime_ns is None or now_ns - info.mtime_ns > STALE_SECONDS * 1e9:
                cache.fs.delete_file(info.path)
    except OSError as err:  # another writer removed it first, or the cache is read-only: harmless
        log.debug("%s: leftovers of %s stay: %s", KEY, key, err)


def store_entry(cache: FeatureCache, key: str, dataset: Any, description: dict[str, Any]) -> bool:
    """Publish ``dataset`` as entry ``key`` (data first, manifest last); False, with a warning, when
    the cache cannot be written (the caller goes on with the features it has)."""
    data = to_arrow_bytes(dataset)
    digest = hashlib.sha256(data).hexdigest()
    name = f"{digest}{DATA_SUFFIX}"
    manifest = {
        "key": key, "file": name, "size": data.size, "sha256": digest, "rows": dataset.num_rows,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "description": description,
    }
    try:
        cache.fs.create_dir(cache.path(key), recursive=True)
        _put(cache.fs, cache.path(key, name), data)
        _put(cache.fs, cache.path(key, MANIFEST), json.dumps(manifest, indent=1).encode())
    except (OSError, pa.ArrowException) as err:
        log.warning("%s: cannot store entry %s in %s (%s); this trial goes on without it",
                    KEY, key, cache.location, _first_line(err))
        return False
    remove_leftovers(cache, key, keep=name)
    return True


def cached_dataset(cache: FeatureCache, key: str, description: dict[str, Any],
                   build: Callable[[], Any]) -> tuple[Any, bool]:
    """Entry ``key`` of the cache, or ``build()`` stored as that entry; True when built here."""
    found = load_entry(cache, key)
    if found is not None:
        log.info("%s: %s read from %s (%d rows)", KEY, key, cache.location, found.num_rows)
        return found, False
    started = time.perf_counter()
    dataset = build()
    stored = store_entry(cache, key, dataset, description)
    log.info("%s: %s built in %.1f s (%d rows)%s", KEY, key, time.perf_counter() - started, dataset.num_rows,
             f", stored in {cache.location}" if stored else "")
    return dataset, True


def entry_keys(cache: FeatureCache) -> list[str]:
    """Keys of the published entries (those with a manifest), sorted."""
    infos = cache.fs.get_file_info(pafs.FileSelector(cache.root))
    return sorted(info.base_name for info in infos if info.type == pafs.FileType.Directory
                  and cache.fs.get_file_info(cache.path(info.base_name, MANIFEST)).type == pafs.FileType.File)
