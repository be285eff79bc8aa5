import numpy as np
import pytest
from datasets import Dataset

from spa_tune.data.features import build_eval_dataset, build_train_dataset
from spa_tune.data.postprocess import best_span, postprocess_predictions
from spa_tune.model.loading import load_tokenizer

CONTEXT = " ".join(f"Sentence {i} talks about topic {i}." for i in range(12)) + " The treasure is hidden in Lisbon today."
ANSWER = "Lisbon"
EXAMPLE = {"id": "x1", "title": "t", "context": CONTEXT, "question": "Where is the treasure hidden?",
           "answers": {"text": [ANSWER], "answer_start": [CONTEXT.index(ANSWER)]}}


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("minilm")


def test_long_context_overflows_into_labelled_windows(tokenizer):
    ds = Dataset.from_list([EXAMPLE])
    features = build_train_dataset(ds, tokenizer, max_seq_length=48, doc_stride=16, max_query_length=16)
    assert len(features) >= 3
    labelled = 0
    for row in features:
        start, end = row["start_positions"], row["end_positions"]
        if start == 0:
            assert end == 0
            continue
        labelled += 1
        assert tokenizer.decode(row["input_ids"][start : end + 1]) == "lisbon"
    assert labelled >= 1
    assert features[0]["start_positions"] == 0  # the first window ends before the answer


def test_eval_features_map_back_to_context(tokenizer):
    ds = Dataset.from_list([EXAMPLE])
    features = build_eval_dataset(ds, tokenizer, max_seq_length=48, doc_stride=16, max_query_length=16)
    assert len(features) >= 3 and set(features["example_id"]) == {"x1"}
    row = features[len(features) - 1]
    spans = [o for o in row["offset_mapping"] if o is not None]
    assert row["offset_mapping"][0] is None  # [CLS]
    assert any(CONTEXT[a:b] == ANSWER for a, b in spans)


def test_postprocess_picks_best_span_across_windows():
    context = "alpha beta gamma delta"
    offsets_w1 = [None, None, (0, 5), (6, 10), None]  # CLS, question, alpha, beta, SEP
    offsets_w2 = [None, None, (11, 16), (17, 22), None]  # gamma, delta
    examples = [{"id": "e", "context": context}]
    features = {"example_id": ["e", "e"], "offset_mapping": [offsets_w1, offsets_w2]}
    start = np.array([[9.0, 9.0, 1.0, 0.5, 9.0], [9.0, 9.0, 3.0, 0.0, 9.0]])
    end = np.array([[9.0, 9.0, 0.0, 1.0, 9.0], [9.0, 9.0, 0.0, 2.5, 9.0]])
    # non-context tokens carry the largest logits but are never chosen; best: gamma..delta (3 + 2.5)
    assert postprocess_predictions(examples, features, start, end, n_best_size=5, max_answer_length=30) == {
        "e": "gamma delta"
    }
    # with max_answer_length 1 the two-token span is invalid: best single token in window 2 is gamma (3 + 0)
    assert postprocess_predictions(examples, features, start, end, 5, 1) == {"e": "gamma"}


def test_best_span_rejects_end_before_start():
    offsets = [None, (0, 1), (2, 3), (4, 5)]
    start = np.array([0.0, 0.0, 0.0, 5.0])
    end = np.array([0.0, 4.0, 0.0, 0.0])
    score, a, b = best_span(start, end, offsets, n_best_size=4, max_answer_length=10)
    assert (a, b) != (4, 1) and b >= a
    assert best_span(start, end, [None] * 4, 4, 10) is None
