"""Read and write SQuAD v1.1 files in the official nested JSON layout, with checked answers.

Flat records follow the Hub's ``rajpurkar/squad`` layout:
``{"id", "title", "context", "question", "answers": {"text": [...], "answer_start": [...]}}``.
Every problem in a file raises :class:`SpaTuneError` with a one-line message naming the file
and the place (``data[0].paragraphs[3]``) or question id (``example <id>``) at fault.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import SpaTuneError


def _field(obj: Any, key: str, kind: type | tuple[type, ...], where: str, path: Path) -> Any:
    """``obj[key]`` checked to be of ``kind`` (never a bool); errors name ``where`` in ``path``."""
    if not isinstance(obj, dict):
        raise SpaTuneError(f"{path}: {where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise SpaTuneError(f"{path}: {where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = " or ".join(k.__name__ for k in kinds)
        raise SpaTuneError(f"{path}: {where}.{key}: expected {expected}, got {type(value).__name__}")
    return value


def _load_json(path: Path) -> Any:
    """Parsed JSON of ``path``; a missing file or bad JSON is a one-line error."""
    if not path.is_file():
        raise SpaTuneError(f"{path}: no such data file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        reason = " ".join(str(err).split())
        raise SpaTuneError(f"{path}: not valid JSON ({reason})") from None


def read_squad_json(path: str | Path) -> list[dict]:
    """Flat records ``{id, title, context, question, answers: {text, answer_start}}`` of a file.

    Checks the nested layout, that every question has at least one answer, that each answer is
    the exact slice of its context at ``answer_start``, and that question ids are unique.
    """
    path = Path(path)
    data = _load_json(path)
    records: list[dict] = []
    seen: set[str] = set()
    for a, article in enumerate(_field(data, "data", list, "top level", path)):
        title = _title(article, f"data[{a}]", path)
        for p, paragraph in enumerate(_field(article, "paragraphs", list, f"data[{a}]", path)):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(paragraph, "context", str, where, path)
            for q, qa in enumerate(_field(paragraph, "qas", list, where, path)):
                qid = str(_field(qa, "id", (str, int), f"{where}.qas[{q}]", path))
                if qid in seen:
                    raise SpaTuneError(f"{path}: example {qid}: duplicate question id")
                seen.add(qid)
                records.append(_record(qa, qid, title, context, path))
    if not records:
        raise SpaTuneError(f"{path}: no questions in the file")
    return records


def _title(article: Any, where: str, path: Path) -> str:
    """The article title; optional (empty when absent) but a string when present."""
    if isinstance(article, dict) and "title" not in article:
        return ""
    return _field(article, "title", str, where, path)


def _record(qa: dict, qid: str, title: str, context: str, path: Path) -> dict:
    """One flat record; every answer is checked against ``context``."""
    where = f"example {qid}"
    question = _field(qa, "question", str, where, path)
    answers = _field(qa, "answers", list, where, path)
    if not answers:
        raise SpaTuneError(f"{path}: {where}: no answers")
    texts, starts = [], []
    for k, answer in enumerate(answers):
        text = _field(answer, "text", str, f"{where}: answers[{k}]", path)
        start = _field(answer, "answer_start", int, f"{where}: answers[{k}]", path)
        _check_span(context, text, start, where, path)
        texts.append(text)
        starts.append(start)
    return {"id": qid, "title": title, "context": context, "question": question,
            "answers": {"text": texts, "answer_start": starts}}


def _check_span(context: str, text: str, start: int, where: str, path: Path) -> None:
    """Raise unless ``text`` is non-empty and equals ``context[start:start + len(text)]``."""
    if not text:
        raise SpaTuneError(f"{path}: {where}: empty answer text")
    found = context[start : start + len(text)] if start >= 0 else ""
    if found != text:
        raise SpaTuneError(
            f"{path}: {where}: answer {text!r} does not match the context at offset {start} ({found!r})"
        )


def to_nested(records: list[dict], version: str = "1.1") -> dict:
    """The official nested layout of flat records, grouped by title then context, order kept."""
    articles: dict[str, dict[str, list]] = {}
    for rec in records:
        paragraphs = articles.setdefault(rec.get("title", ""), {})
        qas = paragraphs.setdefault(rec["context"], [])
        answers = [{"text": t, "answer_start": int(s)}
                   for t, s in zip(rec["answers"]["text"], rec["answers"]["answer_start"])]
        qas.append({"id": rec["id"], "question": rec["question"], "answers": answers})
    data = [
        {"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs.items()]}
        for title, paragraphs in articles.items()
    ]
    return {"version": version, "data": data}


def write_squad_json(records: list[dict], path: str | Path, version: str = "1.1") -> Path:
    """Write flat records as an official SQuAD JSON file (the inverse of ``read_squad_json``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_nested(records, version), ensure_ascii=False), encoding="utf-8")
    return path
