"""Tokenise SQuAD examples into overlapping windows: training labels and evaluation offsets.

Question and context are encoded as a pair, only the context is truncated, and long contexts
overflow into several windows of ``max_seq_length`` tokens overlapping by ``doc_stride`` tokens.
In evaluation features, ``offset_mapping`` keeps the character span of context tokens and holds
``None`` for every other token (question, special tokens, padding).
"""

from __future__ import annotations

from typing import Any

MODEL_COLUMNS = ["input_ids", "attention_mask", "token_type_ids"]


def _encode(examples: dict, tokenizer, max_seq_length: int, doc_stride: int, max_query_length: int):
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


def _context_span(sequence_ids: list) -> tuple[int, int]:
    """First and last token index of the context (sequence id 1) in a window."""
    first = sequence_ids.index(1)
    last = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
    return first, last


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
        first, last = _context_span(encoded.sequence_ids(i))
        if offsets[first][0] > char_start or offsets[last][1] < char_end:
            starts.append(0)
            ends.append(0)
            continue
        token_start = first
        while token_start <= last and offsets[token_start][0] <= char_start:
            token_start += 1
        token_end = last
        while token_end >= first and offsets[token_end][1] >= char_end:
            token_end -= 1
        starts.append(token_start - 1)
        ends.append(token_end + 1)
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
    """Training windows of a ``datasets.Dataset`` of SQuAD examples (kept in memory, never cached)."""
    return _windows(examples, prepare_train_features, tokenizer, max_seq_length, doc_stride, max_query_length)


def build_eval_dataset(examples, tokenizer, max_seq_length: int, doc_stride: int, max_query_length: int = 64):
    """Evaluation windows of a ``datasets.Dataset`` of SQuAD examples (kept in memory, never cached)."""
    return _windows(examples, prepare_eval_features, tokenizer, max_seq_length, doc_stride, max_query_length)
