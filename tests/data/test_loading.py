import datasets
import pytest

from spa_tune.data.generate import write_generated_squad
from spa_tune.data.loading import load_squad
from spa_tune.data.squad_json import read_squad_json
from spa_tune.errors import SpaTuneError


@pytest.fixture()
def files(tmp_path):
    return write_generated_squad(tmp_path, 40, 12, seed=3)


def test_local_files_with_max_samples(files):
    train_file, dev_file = files
    train, dev = load_squad(None, str(train_file), str(dev_file), max_train_samples=25, max_eval_samples=5)
    records = read_squad_json(train_file)
    assert len(train) == 25 and len(dev) == 5
    assert list(train["id"]) == [r["id"] for r in records[:25]]  # the first N, in file order
    assert train[0] == records[0]  # same layout as the hub's rajpurkar/squad
    assert set(train.column_names) == {"id", "title", "context", "question", "answers"}
    # limits larger than the data keep everything
    train, dev = load_squad(None, str(train_file), str(dev_file), max_train_samples=1000, max_eval_samples=None)
    assert len(train) == 40 and len(dev) == 12


def test_one_file_and_the_other_split_from_the_hub(files, monkeypatch):
    calls = []

    def fake_load_dataset(name, split):
        calls.append((name, split))
        return datasets.Dataset.from_list(read_squad_json(files[1]))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    train, dev = load_squad("some/squad", str(files[0]), None, None, 3)
    assert calls == [("some/squad", "validation")] and len(train) == 40 and len(dev) == 3


def test_hub_failure_is_one_line_error_naming_the_dataset(monkeypatch):
    def offline(name, split):
        raise ConnectionError("Couldn't reach the hub\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(SpaTuneError) as err:
        load_squad("rajpurkar/squad", None, None, None, None)
    assert str(err.value) == "dataset: cannot load 'rajpurkar/squad' split 'train' from the hub: Couldn't reach the hub"


def test_hub_dataset_without_squad_columns(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda name, split: datasets.Dataset.from_list([{"text": "x"}]))
    with pytest.raises(SpaTuneError, match="'imdb' split 'train' lacks the SQuAD column"):
        load_squad("imdb", None, None, None, None)


def test_no_source_at_all():
    with pytest.raises(SpaTuneError, match="dataset:"):
        load_squad(None, "train.json", None, None, None)


def test_bad_local_file_names_it(tmp_path):
    (tmp_path / "train.json").write_text("[]")
    with pytest.raises(SpaTuneError, match="train.json"):
        load_squad(None, str(tmp_path / "train.json"), str(tmp_path / "train.json"), None, None)


def test_real_hub_loader_offline_gives_one_line_error(monkeypatch):
    """The real ``datasets.load_dataset`` with hub access switched off: no network, one error line."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(SpaTuneError) as err:
        load_squad("rajpurkar/squad", None, None)
    assert str(err.value).startswith("dataset: cannot load 'rajpurkar/squad' split 'train' from the hub")
    assert "\n" not in str(err.value)


def test_first_articles_then_first_questions(tmp_path):
    train_file, dev_file = write_generated_squad(tmp_path, 400, 200, seed=3)
    records = read_squad_json(train_file)
    titles = list(dict.fromkeys(r["title"] for r in records))
    assert len(titles) >= 3 and len({r["title"] for r in read_squad_json(dev_file)}) >= 2
    first_two = [r["id"] for r in records if r["title"] in titles[:2]]
    train, dev = load_squad(None, str(train_file), str(dev_file), max_train_articles=2, max_eval_articles=1)
    assert list(train["id"]) == first_two
    assert set(dev["title"]) == {read_squad_json(dev_file)[0]["title"]}
    # articles first, then the first N of their questions; more articles than the file has keeps all
    train, _ = load_squad(None, str(train_file), str(dev_file), max_train_samples=3, max_train_articles=2)
    assert list(train["id"]) == first_two[:3]
    train, _ = load_squad(None, str(train_file), str(dev_file), max_train_articles=1000)
    assert len(train) == len(records)
