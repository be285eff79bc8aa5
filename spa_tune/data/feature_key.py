"""What identifies one split's tokenized features, as the key of its feature-cache entry.

Two trials share an entry exactly when every input that changes the features is equal: the
source (a local file by the SHA-256 of its bytes, not its path or modification time; a hub split
by its name, split and the fingerprint ``datasets`` gives the loaded split), the question and
article limits, the tokenizer (its serialized pipeline and the settings the feature code reads,
so another vocabulary under the same name differs), the window settings, the ``tokenizers``
version and ``FORMAT_VERSION``, raised whenever the feature code changes what it produces.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import SpaTuneError

# Raise when spa_tune/data/features.py changes the windows, labels or offsets it writes.
FORMAT_VERSION = 1
CHUNK_BYTES = 1 << 20


def canonical_digest(value: Any) -> str:
    """SHA-256 (hex) of ``value`` as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def file_source(path: str | Path) -> dict[str, str]:
    """A local data file, by content."""
    return {"file_sha256": file_digest(path)}


def hub_source(name: str, split: str, examples: Any) -> dict[str, str]:
    """A hub data set's split, by name and the fingerprint of the loaded (and limited) examples."""
    return {"hub": name, "split": split, "fingerprint": str(getattr(examples, "_fingerprint", ""))}


def tokenizer_digest(tokenizer: Any) -> str:
    """SHA-256 of what a fast tokenizer does: its pipeline (vocabulary, normaliser, special tokens)
    and padding/truncation sides; the truncation and padding state each call sets are left out."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not getattr(tokenizer, "is_fast", False):
        raise SpaTuneError(f"tokenizer: {type(tokenizer).__name__} is not a fast tokenizer (offsets are needed)")
    pipeline = json.loads(backend.to_str())
    pipeline.pop("truncation", None)
    pipeline.pop("padding", None)
    return canonical_digest({
        "class": type(tokenizer).__name__,
        "padding_side": getattr(tokenizer, "padding_side", None),
        "truncation_side": getattr(tokenizer, "truncation_side", None),
        "pipeline": pipeline,
    })


def split_description(split: str, source: dict, limits: dict, tokenizer: str, window: dict) -> dict[str, Any]:
    """Everything the features of ``split`` depend on (stored in the entry's manifest)."""
    import tokenizers

    return {
        "format": FORMAT_VERSION,
        "split": split,
        "source": source,
        "limits": limits,
        "tokenizer_sha256": tokenizer,
        "tokenizers_version": tokenizers.__version__,
        "window": window,
    }


def entry_key(description: dict[str, Any]) -> str:
    """The entry's folder name: the split, then 32 hex digits of the description's digest."""
    return f"{description['split']}-{canonical_digest(description)[:32]}"
