"""Read and write SQuAD v1.1 files in the official nested JSON layout, with checked answers."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import SpaTuneError


def _field(obj, key: str, kind: type, where: str, path: Path):
    if not isinstance(obj, dict) or key not in obj:
        raise SpaTuneError(f"{path}: {where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise SpaTuneError(f"{path}: {where}.{key}: expected {expected}, got {type(value).__name__}")
    return value


def read_squad_json(path: str | Path) -> list[dict]:
    """Flat records ``{id, title, context, question, answers: {text, answer_start}}`` of a file.

    Every answer must be the exact slice of its context at ``answer_start``; the error names the
    file and the question id.
    """
    path = Path(path)
    if not path.is_file():
        raise SpaTuneError(f"{path}: no such data file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SpaTuneError(f"{path}: not valid JSON ({err})") from None
    records = []
    for a, article in enumerate(_field(data, "data", list, "top level", path)):
        title = article.get("title", "") if isinstance(article, dict) else ""
        for p, paragraph in enumerate(_field(article, "paragraphs", list, f"data[{a}]", path)):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(paragraph, "context", str, where, path)
            for q, qa in enumerate(_field(paragraph, "qas", list, where, path)):
                qid = str(_field(qa, "id", (str, int), f"{where}.qas[{q}]", path))
                records.append(_record(qa, qid, title, context, path))
    return records


def _record(qa: dict, qid: str, title: str, context: str, path: Path) -> dict:
    question = _field(qa, "question", str, f"example {qid}", path)
    answers = _field(qa, "answers", list, f"example {qid}", path)
    if not answers:
        raise SpaTuneError(f"{path}: example {qid}: no answers")
    texts, starts = [], []
    for answer in answers:
        text = _field(answer, "text", str, f"example {qid} answer", path)
        start = _field(answer, "answer_start", int, f"example {qid} answer", path)
        found = context[start : start + len(text)]
        if found != text:
            raise SpaTuneError(
                f"{path}: example {qid}: answer {text!r} does not match the context at offset {start} ({found!r})"
            )
        texts.append(text)
        starts.append(start)
    return {"id": qid, "title": title, "context": context, "question": question,
            "answers": {"text": texts, "answer_start": starts}}


def write_squad_json(records: list[dict], path: str | Path, version: str = "1.1") -> Path:
    """Write flat records back in the nested layout, grouped by title then context, order kept."""
    articles: dict[str, dict[str, list]] = {}
    for rec in records:
        paragraphs = articles.setdefault(rec.get("title", ""), {})
        qas = paragraphs.setdefault(rec["context"], [])
        answers = [{"text": t, "answer_start": s} for t, s in zip(rec["answers"]["text"], rec["answers"]["answer_start"])]
        qas.append({"id": rec["id"], "question": rec["question"], "answers": answers})
    data = [
        {"title": title, "paragraphs": [{"context": c, "qas": qas} for c, qas in paragraphs.items()]}
        for title, paragraphs in articles.items()
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": version, "data": data}, ensure_ascii=False))
    return path
