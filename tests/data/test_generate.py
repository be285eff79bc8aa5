import re

import pytest

from spa_tune.data.generate import (
    ANIMALS,
    CITIES,
    COLOURS,
    FIRST,
    INSTRUMENTS,
    JOBS,
    LAST,
    NUMBERS,
    PET_NAMES,
    YEARS,
    contexts_of,
    generate_squad,
    write_generated_squad,
)
from spa_tune.data.squad_json import read_squad_json
from spa_tune.errors import SpaTuneError


def paragraphs(squad):
    return [p for article in squad["data"] for p in article["paragraphs"]]


def test_deterministic_exact_count_and_valid_spans():
    first, second = generate_squad(137, seed=5), generate_squad(137, seed=5)
    assert first == second and first["version"] == "1.1"
    assert generate_squad(137, seed=6) != first
    questions = [qa for p in paragraphs(first) for qa in p["qas"]]
    assert len(questions) == 137 and len({q["id"] for q in questions}) == 137
    for paragraph in paragraphs(first):
        for qa in paragraph["qas"]:
            (answer,) = qa["answers"]
            start = answer["answer_start"]
            assert paragraph["context"][start : start + len(answer["text"])] == answer["text"]
    for n in (1, 2, 3, 7):
        assert sum(len(p["qas"]) for p in paragraphs(generate_squad(n, seed=0))) == n


def test_paragraph_shape_and_unambiguous_questions():
    for paragraph in paragraphs(generate_squad(400, seed=2)):
        sentences = re.findall(r"[^.]+\.", paragraph["context"])
        assert 3 <= len(sentences) <= 5
        # each answer occurs exactly once in its (lower-cased) paragraph: the question type picks one span
        for qa in paragraph["qas"]:
            assert len(re.findall(rf"\b{qa['answers'][0]['text'].lower()}\b", paragraph["context"].lower())) == 1


def test_vocabularies_do_not_overlap():
    vocabularies = [FIRST, LAST, CITIES, JOBS, COLOURS, ANIMALS, PET_NAMES, NUMBERS, INSTRUMENTS, YEARS]
    words = [w.lower() for vocabulary in vocabularies for w in vocabulary]
    assert len(words) == len(set(words))


def test_vocabulary_is_single_wordpiece_tokens(tokenizer):
    words = FIRST + LAST + CITIES + JOBS + COLOURS + ANIMALS + PET_NAMES + NUMBERS + INSTRUMENTS + YEARS
    assert [w for w in words if len(tokenizer.tokenize(w)) != 1] == []


def test_written_files_are_disjoint_and_readable(tmp_path):
    train, dev = write_generated_squad(tmp_path, 300, 80, seed=1)
    assert (train.name, dev.name) == ("train.json", "dev.json")
    train_records, dev_records = read_squad_json(train), read_squad_json(dev)
    assert len(train_records) == 300 and len(dev_records) == 80
    assert not {r["context"] for r in train_records} & {r["context"] for r in dev_records}
    assert not {r["id"] for r in train_records} & {r["id"] for r in dev_records}
    before = train.stat().st_mtime_ns
    write_generated_squad(tmp_path, 300, 80, seed=1)  # identical content: file left alone
    assert train.stat().st_mtime_ns == before
    assert contexts_of(generate_squad(10, 1, "train")) <= {r["context"] for r in train_records}


def test_zero_questions_is_a_user_error(tmp_path):
    with pytest.raises(SpaTuneError, match="at least 1, got 0"):
        write_generated_squad(tmp_path, 10, 0)
