import json

import pytest

from spa_tune.data.squad_json import read_squad_json, write_squad_json
from spa_tune.errors import SpaTuneError

RECORDS = [
    {"id": "a1", "title": "T", "context": "Paris is in France.", "question": "Where is Paris?",
     "answers": {"text": ["France", "in France"], "answer_start": [12, 9]}},
    {"id": "a2", "title": "T", "context": "Paris is in France.", "question": "What is in France?",
     "answers": {"text": ["Paris"], "answer_start": [0]}},
    {"id": "b1", "title": "U", "context": "Rome is old.", "question": "What is old?",
     "answers": {"text": ["Rome"], "answer_start": [0]}},
]


def test_round_trip(tmp_path):
    path = write_squad_json(RECORDS, tmp_path / "d.json")
    data = json.loads(path.read_text())
    assert data["version"] == "1.1" and len(data["data"]) == 2
    assert len(data["data"][0]["paragraphs"]) == 1 and len(data["data"][0]["paragraphs"][0]["qas"]) == 2
    assert read_squad_json(path) == RECORDS


def test_answer_not_matching_context_names_file_and_id(tmp_path):
    bad = [dict(RECORDS[2], answers={"text": ["Rome"], "answer_start": [3]})]
    path = write_squad_json(bad, tmp_path / "bad.json")
    with pytest.raises(SpaTuneError) as err:
        read_squad_json(path)
    message = str(err.value)
    assert "bad.json" in message and "example b1" in message and "'Rome'" in message and "offset 3" in message


@pytest.mark.parametrize(
    "content,fragment",
    [
        ("{not json", "not valid JSON"),
        ('{"version": "1.1"}', "missing field 'data'"),
        ('{"data": [{"title": "x", "paragraphs": [{"qas": []}]}]}', "data[0].paragraphs[0]: missing field 'context'"),
        ('{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q", "question": "?", "answers": []}]}]}]}',
         "example q: no answers"),
        ('{"data": ["oops"]}', "data[0]: expected a JSON object, got str"),
        ('{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q", "answers": []}]}]}]}',
         "example q: missing field 'question'"),
        ('{"data": [{"paragraphs": [{"context": "ab", "qas": [{"id": "q", "question": "?", '
         '"answers": [{"text": "a", "answer_start": "0"}]}]}]}]}', "example q: answers[0].answer_start: expected int, got str"),
        ('{"data": [{"paragraphs": [{"context": "ab", "qas": [{"id": "q", "question": "?", '
         '"answers": [{"text": "b", "answer_start": -1}]}]}]}]}', "example q: answer 'b' does not match the context at offset -1"),
        ('{"data": [{"paragraphs": [{"context": "ab", "qas": [{"id": "q", "question": "?", '
         '"answers": [{"text": "a", "answer_start": 0}]}, {"id": "q", "question": "!", '
         '"answers": [{"text": "b", "answer_start": 1}]}]}]}]}', "example q: duplicate question id"),
        ('{"version": "1.1", "data": []}', "no questions"),
    ],
)
def test_malformed_files(tmp_path, content, fragment):
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(SpaTuneError, match="m.json") as err:
        read_squad_json(path)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(SpaTuneError, match="no such data file"):
        read_squad_json(tmp_path / "none.json")


def test_unicode_and_optional_title(tmp_path):
    path = tmp_path / "u.json"
    path.write_text('{"data": [{"paragraphs": [{"context": "Beyoncé sang.", "qas": [{"id": 7, "question": "Who?", '
                    '"answers": [{"text": "Beyoncé", "answer_start": 0}]}]}]}]}', encoding="utf-8")
    (record,) = read_squad_json(path)
    assert record == {"id": "7", "title": "", "context": "Beyoncé sang.", "question": "Who?",
                      "answers": {"text": ["Beyoncé"], "answer_start": [0]}}
    assert read_squad_json(write_squad_json([record], tmp_path / "again.json")) == [record]


def test_real_squad_subset_reads_and_round_trips(real_squad_file, tmp_path):
    path = real_squad_file("dev-subset.json")
    records = read_squad_json(path)
    original = json.loads(path.read_text(encoding="utf-8"))
    assert len(records) == sum(len(p["qas"]) for a in original["data"] for p in a["paragraphs"])
    assert records[0]["title"] == original["data"][0]["title"] and len(records[0]["answers"]["text"]) >= 1
    assert json.loads(write_squad_json(records, tmp_path / "dev.json").read_text(encoding="utf-8")) == original
