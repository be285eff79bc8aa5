import numpy as np
from datasets import Dataset

from spa_tune.data.features import build_eval_dataset
from spa_tune.data.postprocess import best_span, postprocess_predictions

CONTEXT = "alpha beta gamma delta"
# two windows of one example: [CLS] question alpha beta [SEP] and [CLS] question gamma delta [SEP]
FEATURES = {
    "example_id": ["e", "e"],
    "offset_mapping": [[None, None, (0, 5), (6, 10), None], [None, None, (11, 16), (17, 22), None]],
}
# non-context tokens carry the largest logits everywhere
START = np.array([[9.0, 9.0, 1.0, 0.5, 9.0], [9.0, 9.0, 3.0, 0.0, 9.0]])
END = np.array([[9.0, 9.0, 0.0, 1.0, 9.0], [9.0, 9.0, 0.0, 2.5, 9.0]])


def test_best_span_lies_in_the_second_window():
    examples = [{"id": "e", "context": CONTEXT}]
    # window 1 best: alpha..beta = 1 + 1 = 2; window 2 best: gamma..delta = 3 + 2.5 = 5.5
    assert postprocess_predictions(examples, FEATURES, START, END, n_best_size=5, max_answer_length=30) == {
        "e": "gamma delta"
    }
    # spans of at most one token: gamma (3 + 0) beats delta (0 + 2.5), alpha (1 + 0) and beta (0.5 + 1)
    assert postprocess_predictions(examples, FEATURES, START, END, 5, 1) == {"e": "gamma"}


def test_n_best_size_limits_the_candidates():
    # with n_best_size 3 only [CLS], question and [SEP] (logit 9) are candidates: no valid pair at all
    examples = [{"id": "e", "context": CONTEXT}, {"id": "lonely", "context": "no windows"}]
    assert postprocess_predictions(examples, FEATURES, START, END, n_best_size=3) == {"e": "", "lonely": ""}


def test_best_span_never_picks_invalid_pairs():
    offsets = [None, (0, 1), (2, 3), (4, 5)]
    start = np.array([50.0, 0.0, 0.0, 5.0])
    end = np.array([50.0, 4.0, 0.0, 0.0])
    # (start 3, end 1) would score 9 but ends before it starts; [CLS] scores 100 but is outside the context
    assert best_span(start, end, offsets, n_best_size=4, max_answer_length=10) == (5.0, 4, 5)
    assert best_span(start, end, [None] * 4, 4, 10) is None
    # a three-token span 1..3 is too long for max_answer_length 2
    start, end = np.array([0.0, 5.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0, 5.0])
    assert best_span(start, end, offsets, 4, 3) == (10.0, 0, 5)
    assert best_span(start, end, offsets, 4, 2) == (6.0, 0, 3)  # best two-token span: 1..2 = 5 + 1


def test_logits_peaked_on_the_answer_recover_it(tokenizer):
    context = " ".join(f"Fact {i} concerns item {i}." for i in range(15)) + " The key is under the red mat."
    examples = Dataset.from_list([{"id": "k", "title": "t", "context": context, "question": "Where is the key?",
                                   "answers": {"text": ["red mat"], "answer_start": [context.index("red mat")]}}])
    features = build_eval_dataset(examples, tokenizer, max_seq_length=40, doc_stride=12, max_query_length=12)
    assert len(features) >= 3
    start = np.zeros((len(features), 40))
    end = np.zeros((len(features), 40))
    for i, offsets in enumerate(features["offset_mapping"]):
        for t, span in enumerate(offsets):
            if span is not None and context[span[0] : span[1]] == "red":
                start[i, t] = 4.0
            if span is not None and context[span[0] : span[1]] == "mat":
                end[i, t] = 4.0
    assert postprocess_predictions(examples, features, start, end) == {"k": "red mat"}
