import pytest
import torch
from datasets import Dataset

from spa_tune.data.features import (
    answer_token_span,
    build_eval_dataset,
    build_train_dataset,
    prepare_eval_features,
    prepare_train_features,
)
from spa_tune.data.squad_json import read_squad_json
from spa_tune.errors import SpaTuneError

CONTEXT = " ".join(f"Sentence {i} talks about topic {i}." for i in range(12)) + " The treasure is hidden in Lisbon today."
ANSWER = "Lisbon"
EXAMPLE = {"id": "x1", "title": "t", "context": CONTEXT, "question": "Where is the treasure hidden?",
           "answers": {"text": [ANSWER], "answer_start": [CONTEXT.index(ANSWER)]}}
SHORT = {"id": "s1", "title": "t", "context": "Anna plays the harp.", "question": "What does Anna play?",
         "answers": {"text": ["harp"], "answer_start": [15]}}
WINDOW = dict(max_seq_length=48, doc_stride=16, max_query_length=16)


def as_batch(rows):
    return {key: [row[key] for row in rows] for key in rows[0]}


def test_long_context_overflows_into_labelled_windows(tokenizer):
    features = build_train_dataset(Dataset.from_list([EXAMPLE, SHORT]), tokenizer, **WINDOW)
    assert set(features.column_names) == {"input_ids", "attention_mask", "token_type_ids",
                                          "start_positions", "end_positions"}
    assert len(features) >= 4  # several windows for the long context, one for the short one
    assert isinstance(features[0]["input_ids"], torch.Tensor) and features[0]["input_ids"].shape == (48,)
    spans = [(int(row["start_positions"]), int(row["end_positions"])) for row in features]
    assert spans[0] == (0, 0)  # the first window ends before the answer: label is [CLS]
    labelled = [(i, s, e) for i, (s, e) in enumerate(spans) if s != 0]
    assert len(labelled) >= 2  # the long example's answer sits in the overlap of two windows, plus SHORT
    for i, start, end in labelled:
        assert end >= start
        assert tokenizer.decode(features[i]["input_ids"][start : end + 1]) in ("lisbon", "harp")
    assert tokenizer.decode(features[len(features) - 1]["input_ids"][spans[-1][0] : spans[-1][1] + 1]) == "harp"
    for start, end in spans:
        if start == 0:
            assert end == 0


def test_question_is_cut_to_max_query_length(tokenizer):
    long_question = dict(SHORT, question="What " + "really " * 40 + "does Anna play?")
    out = prepare_train_features(as_batch([long_question]), tokenizer, max_seq_length=32, doc_stride=4, max_query_length=8)
    assert len(out["input_ids"]) == 1
    ids = out["input_ids"][0]
    sep = ids.index(tokenizer.sep_token_id)
    assert sep == 1 + 8  # [CLS] + 8 question tokens
    assert tokenizer.decode(ids[out["start_positions"][0] : out["end_positions"][0] + 1]) == "harp"


def test_eval_features_keep_ids_and_context_offsets(tokenizer):
    features = build_eval_dataset(Dataset.from_list([EXAMPLE, SHORT]), tokenizer, **WINDOW)
    ids = list(features["example_id"])
    assert ids[0] == "x1" and ids[-1] == "s1" and ids.count("s1") == 1 and ids.count("x1") >= 3
    for row in features:
        context = CONTEXT if row["example_id"] == "x1" else SHORT["context"]
        offsets = row["offset_mapping"]
        assert offsets[0] is None  # [CLS]
        tokens = tokenizer.convert_ids_to_tokens(row["input_ids"].tolist())
        context_tokens = [(t, o) for t, o in zip(tokens, offsets) if o is not None]
        assert context_tokens and all(t not in ("[CLS]", "[SEP]", "[PAD]") for t, _ in context_tokens)
        for token, (a, b) in context_tokens:  # each offset maps back to the token's characters
            assert context[a:b].lower() == token.removeprefix("##")
    last = features[len(features) - 2]  # last window of x1
    assert any(CONTEXT[a:b] == ANSWER for a, b in (o for o in last["offset_mapping"] if o is not None))


def test_prepare_eval_features_none_outside_context(tokenizer):
    out = prepare_eval_features(as_batch([SHORT]), tokenizer, max_seq_length=32, doc_stride=8, max_query_length=16)
    offsets = out["offset_mapping"][0]
    question_len = len(tokenizer.tokenize(SHORT["question"]))
    assert offsets[: question_len + 2] == [None] * (question_len + 2)  # [CLS] question [SEP]
    assert offsets[question_len + 2] == (0, 4)  # "anna"
    assert offsets[-1] is None  # padding
    assert out["example_id"] == ["s1"]


def test_answer_token_span_rules():
    sequence_ids = [None, 0, None, 1, 1, 1, None]
    offsets = [(0, 0), (0, 4), (0, 0), (10, 14), (15, 20), (21, 25), (0, 0)]
    assert answer_token_span(offsets, sequence_ids, 15, 20) == (4, 4)
    assert answer_token_span(offsets, sequence_ids, 10, 25) == (3, 5)
    assert answer_token_span(offsets, sequence_ids, 14, 20) == (4, 4)  # leading space skipped
    assert answer_token_span(offsets, sequence_ids, 5, 12) == (0, 0)  # starts before the window
    assert answer_token_span(offsets, sequence_ids, 21, 30) == (0, 0)  # ends after the window


def test_window_too_small_for_stride_is_a_user_error(tokenizer):
    with pytest.raises(SpaTuneError, match="doc_stride: 40 must be"):
        build_train_dataset(Dataset.from_list([SHORT]), tokenizer, max_seq_length=64, doc_stride=40, max_query_length=32)


def test_real_squad_labels_cover_the_answers(tokenizer, real_squad_file):
    records = read_squad_json(real_squad_file("dev-subset.json"))[:200]
    batch = as_batch(records)
    out = prepare_train_features(batch, tokenizer, max_seq_length=128, doc_stride=32, max_query_length=32)
    eval_out = prepare_eval_features(batch, tokenizer, max_seq_length=128, doc_stride=32, max_query_length=32)
    assert eval_out["example_id"][0] == records[0]["id"] and len(eval_out["example_id"]) == len(out["input_ids"]) > 200
    labelled = 0
    for i, (start, end) in enumerate(zip(out["start_positions"], out["end_positions"])):
        if start == 0:
            continue
        labelled += 1
        record = records[[r["id"] for r in records].index(eval_out["example_id"][i])]
        offsets = eval_out["offset_mapping"][i]
        span = record["context"][offsets[start][0] : offsets[end][1]]
        assert record["answers"]["text"][0].strip() in span and len(span) < len(record["answers"]["text"][0]) + 30
    assert labelled >= 200
