from spa_tune.data.generate import contexts_of, generate_squad, write_generated_squad
from spa_tune.data.loading import load_squad
from spa_tune.data.squad_json import read_squad_json


def test_deterministic_exact_count_and_valid_spans(tmp_path):
    first, second = generate_squad(137, seed=5), generate_squad(137, seed=5)
    assert first == second
    assert generate_squad(137, seed=6) != first
    questions = [qa for a in first["data"] for p in a["paragraphs"] for qa in p["qas"]]
    assert len(questions) == 137 and len({q["id"] for q in questions}) == 137
    for article in first["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answer = qa["answers"][0]
                start = answer["answer_start"]
                assert paragraph["context"][start : start + len(answer["text"])] == answer["text"]


def test_written_files_are_disjoint_and_readable(tmp_path):
    train, dev = write_generated_squad(tmp_path, 300, 80, seed=1)
    train_records, dev_records = read_squad_json(train), read_squad_json(dev)
    assert len(train_records) == 300 and len(dev_records) == 80
    assert not {r["context"] for r in train_records} & {r["context"] for r in dev_records}
    before = train.stat().st_mtime_ns
    write_generated_squad(tmp_path, 300, 80, seed=1)  # identical content: file left alone
    assert train.stat().st_mtime_ns == before
    train_ds, dev_ds = load_squad(None, str(train), str(dev), max_train_samples=50, max_eval_samples=10)
    assert len(train_ds) == 50 and len(dev_ds) == 10 and train_ds[0]["id"] == train_records[0]["id"]
    assert contexts_of(generate_squad(10, 1, "train")) <= {r["context"] for r in train_records}


def test_hub_dataset_offline_gives_one_line_error(monkeypatch):
    import datasets
    import pytest

    from spa_tune.errors import SpaTuneError

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(SpaTuneError, match="dataset: cannot load 'rajpurkar/squad' split 'train' from the hub"):
        load_squad("rajpurkar/squad", None, None)
