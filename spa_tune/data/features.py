"""Tokenise SQuAD examples into overlapping windows: training labels and evaluation offsets.

Question and context are encoded as a pair, only the context is truncated, and long contexts
overflow into several windows of ``max_seq_length`` tokens overlapping by ``doc_stride`` tokens.
The question is first cut to ``max_query_length`` tokens.

Offset convention: in evaluation features, ``offset_mapping`` holds the ``(char_start, char_end)``
span in the context for every context token and ``None`` for every other token (``[CLS]``,
question, ``[SEP]``, padding), so ``context[start:end]`` is the text of a context token.
"""

from __future__ import annotations

from typing import Any

from ..errors import SpaTuneError

MODEL_COLUMNS = ["input_ids", "attention_mask", "token_type_ids"]
LABEL_COLUMNS = ["start_positions", "end_positions"]


def context_room(max_seq_length: int, max_query_length: int, special_tokens: int = 3) -> int:
    """Context tokens a window holds at the least; 3 special tokens for BERT: ``[CLS] q [SEP] c [SEP]``."""
    return max_seq_length - max_query_length - special_tokens


def check_window(max_seq_length: int, doc_stride: int, max_query_length: int, special_tokens: int = 3) -> None:
    """Raise unless a window leaves room for context tokens beyond the ``doc_stride`` overlap."""
    room = context_room(max_seq_length, max_query_length, special_tokens)
    if max_query_length < 1 or doc_stride < 1 or doc_stride >= room:
        raise SpaTuneError(
            f"doc_stride: {doc_stride} must be at least 1 and smaller than max_seq_length - max_query_length - "
            f"{special_tokens} = {max_seq_length} - {max_query_length} - {special_tokens} = {room}"
        )


def _encode(examples: dict, tokenizer, max_seq_length: int, doc_stride: int, max_query_length: int):
    """Pair encoding of (question cut to ``max_query_length`` tokens, context) into windows."""
    if not getattr(tokenizer, "is_fast", False):
        raise SpaTuneError(f"tokenizer: {type(tokenizer).__name__} is not a fast tokenizer (offsets are needed)")
    check_window(max_seq_length, doc_stride, max_query_length, tokenizer.num_special_tokens_to_add(pair=True))
    questions = [q.lstrip() for q in examples["question"]]
    spans = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    questions = [q[: offsets[max_query_length - 1][1]] if len(offsets) > max_query_length else q
                 for q, offsets in zip(questions, spans)]
    return tokenizer(
        questions,
        examples["context"],
        truncation="only_second",
        max_length=max_seq_length,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding="max_length",
    )


def _context_span(sequence_ids: list) -> tuple[int, int] | None:
    """First and last token index of the context (sequence id 1) in a window; None if it has none."""
    if 1 not in sequence_ids:
        return None
    first = sequence_ids.index(1)
    last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
    return first, last


def answer_token_span(offsets: list, sequence_ids: list, char_start: int, char_end: int) -> tuple[int, int]:
    """Token indices of the first and last token overlapping ``[char_start, char_end)`` in one window.

    ``(0, 0)`` (the ``[CLS]`` token) when the answer is not entirely inside the window's context.
    """
    span = _context_span(sequence_ids)
    if span is None:
        return 0, 0
    first, last = span
    if offsets[first][0] > char_start or offsets[last][1] < char_end:
        return 0, 0
    start = first
    while start < last and offsets[start][1] <= char_start:
        start += 1
    end = last
    while end > first and offsets[end][0] >= char_end:
        end -= 1
    return (start, end) if start <= end else (0, 0)


def prepare_train_features(examples: dict, tokenizer, max_seq_length: int, doc_stride: int,
                           max_query_length: int = 64) -> dict[str, Any]:
    """Windows with ``start_positions``/``end_positions`` token labels (CLS when the answer is outside)."""
    encoded = _encode(examples, tokenizer, max_seq_length, doc_stride, max_query_length)
    sample_of = encoded.pop("overflow_to_sample_mapping")
    offsets_all = encoded.pop("offset_mapping")
    starts, ends = [], []
    for i, offsets in enumerate(offsets_all):
        answers = examples["answers"][sample_of[i]]
        char_start = answers["answer_start"][0]
        char_end = char_start + len(answers["text"][0])
        start, end = answer_token_span(offsets, encoded.sequence_ids(i), char_start, char_end)
        starts.append(start)
        ends.append(end)
    encoded["start_positions"] = starts
    encoded["end_positions"] = ends
    return dict(encoded)


def prepare_eval_features(examples: dict, tokenizer, max_seq_length: int, doc_stride: int,
                          max_query_length: int = 64) -> dict[str, Any]:
    """Windows with ``example_id`` and context-only ``offset_mapping`` (``None`` elsewhere)."""
    encoded = _encode(examples, tokenizer, max_seq_length, doc_stride, max_query_length)
    sample_of = encoded.pop("overflow_to_sample_mapping")
    example_ids, offsets_out = [], []
    for i, offsets in enumerate(encoded["offset_mapping"]):
        sequence_ids = encoded.sequence_ids(i)
        example_ids.append(examples["id"][sample_of[i]])
        offsets_out.append([tuple(o) if sequence_ids[k] == 1 else None for k, o in enumerate(offsets)])
    encoded["example_id"] = example_ids
    encoded["offset_mapping"] = offsets_out
    return dict(encoded)


def _windows(examples, prepare, tokenizer, max_seq_length: int, doc_stride: int, max_query_length: int):
    """``examples.map`` of ``prepare`` in memory, without reading or writing the datasets cache."""
    return examples.map(
        prepare,
        batched=True,
        remove_columns=examples.column_names,
        fn_kwargs=dict(tokenizer=tokenizer, max_seq_length=max_seq_length, doc_stride=doc_stride,
                       max_query_length=max_query_length),
        keep_in_memory=True,
        load_from_cache_file=False,
    )


def build_train_dataset(examples, tokenizer, max_seq_length: int, doc_stride: int, max_query_length: int = 64):
    """Training windows of a ``datasets.Dataset`` of SQuAD examples, in torch format (kept in memory)."""
    features = _windows(examples, prepare_train_features, tokenizer, max_seq_length, doc_stride, max_query_length)
    return with_train_format(features)


def with_train_format(features):
    """Training windows as the training loop reads them: model and label columns as torch tensors."""
    features.set_format("torch", columns=[c for c in MODEL_COLUMNS + LABEL_COLUMNS if c in features.column_names])
    return features


def build_eval_dataset(examples, tokenizer, max_seq_length: int, doc_stride: int, max_query_length: int = 64):
    """Evaluation windows of SQuAD examples: model columns as torch tensors, ``example_id`` and
    ``offset_mapping`` as Python objects (kept in memory)."""
    features = _windows(examples, prepare_eval_features, tokenizer, max_seq_length, doc_stride, max_query_length)
    return with_eval_format(features)


def with_eval_format(features):
    """Evaluation windows as evaluation reads them: model columns as torch tensors, the rest as Python objects."""
    columns = [c for c in MODEL_COLUMNS if c in features.column_names]
    features.set_format("torch", columns=columns, output_all_columns=True)
    return features
