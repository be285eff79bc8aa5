import json

import pytest

from spa_tune.data.squad_metric import exact_match_score, f1_score, normalize_answer, squad_scores, write_predictions


@pytest.mark.parametrize(
    "raw,normalized",
    [
        ("The Eiffel Tower", "eiffel tower"),
        ("  an  apple,  a pear!", "apple pear"),
        ("Theory of the case", "theory of case"),  # "the" only as a whole word
        ("U.S.A.", "usa"),
        ("Denver Broncos.", "denver broncos"),
    ],
)
def test_normalize_answer(raw, normalized):
    assert normalize_answer(raw) == normalized


def test_exact_match_and_f1_on_known_pairs():
    assert exact_match_score("the Denver Broncos", "Denver Broncos!")
    assert not exact_match_score("Broncos", "Denver Broncos")
    # prediction "denver broncos team" vs gold "denver broncos": P = 2/3, R = 1, F1 = 0.8
    assert f1_score("Denver Broncos team", "Denver Broncos") == pytest.approx(0.8)
    assert f1_score("Carolina", "Denver Broncos") == 0.0
    assert f1_score("a", "the") == 0.0  # both normalise to nothing
    # repeated tokens count once per occurrence
    assert f1_score("red red", "red") == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_squad_scores_max_over_gold_answers_and_missing_predictions():
    references = {"q1": ["Denver Broncos", "Broncos"], "q2": ["Santa Clara, California"], "q3": ["1966"]}
    predictions = {"q1": "Broncos", "q2": "Santa Clara"}
    scores = squad_scores(predictions, references)
    # q1: EM 1, F1 1; q2: EM 0, F1 = 2 * 1 * (2/3) / (5/3) = 0.8; q3 missing: 0
    assert scores["em"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * 1.8 / 3)


def test_perfect_and_empty_scores():
    assert squad_scores({"a": "the Cat.", "b": "x"}, {"a": ["cat"], "b": ["X"]}) == {"em": 100.0, "f1": 100.0}
    assert squad_scores({}, {}) == {"em": 0.0, "f1": 0.0}
    # extra predictions without a reference are ignored
    assert squad_scores({"a": "cat", "zzz": "dog"}, {"a": ["cat"]}) == {"em": 100.0, "f1": 100.0}


def test_write_predictions_is_a_plain_id_to_text_object(tmp_path):
    path = write_predictions({"q1": "Denver Broncos", "q2": "Beyoncé"}, tmp_path / "out" / "predictions.json")
    assert json.loads(path.read_text(encoding="utf-8")) == {"q1": "Denver Broncos", "q2": "Beyoncé"}
