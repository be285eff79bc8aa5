"""Random mutations of a valid space file: accepted, or one error line naming the file, never a traceback."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spa_tune.cli import main

from .test_space_errors import VALID

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["grid", "optuna", "asha", "topK", "splopa", "null", "1e-3", "../x", "*"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                      max_leaves=6)


def paths(node, prefix=()) -> list[tuple]:
    """Every key path of a nested mapping (lists indexed too)."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


@st.composite
def mutated_spaces(draw) -> str:
    """The text of VALID after a few random deletions, replacements, additions or text edits."""
    data = yaml.safe_load(yaml.safe_dump(VALID))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(paths(data) or [()])) if paths(data) else ()
        parent = data
        for key in where[:-1]:
            parent = parent[key]
        operation = draw(st.sampled_from(["delete", "replace", "add"]))
        if operation == "delete" and where and isinstance(parent, (dict, list)):
            del parent[where[-1]]
        elif operation == "replace" and where:
            parent[where[-1]] = draw(VALUES)
        else:
            target = parent[where[-1]] if where else data
            if isinstance(target, dict):
                target[draw(st.text(min_size=1, max_size=10))] = draw(VALUES)
    text = yaml.safe_dump(data, sort_keys=False)
    if draw(st.booleans()):  # a typo in the file itself
        position = draw(st.integers(0, len(text)))
        text = text[:position] + draw(st.sampled_from([":", "- ", "\t", "{", "'", "\n  x", "]"])) + text[position:]
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=mutated_spaces())
def test_mutated_space_files_are_accepted_or_rejected_in_one_line(no_ray, text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "space.yaml"
        path.write_text(text)
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(["validate", "--space", str(path)])
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["space.yaml"], "validate wrote a file"
    message = err.getvalue().strip()
    if code == 0:
        assert out.getvalue().startswith(f"{path}: ok")
        return
    assert code == 2, (code, message)
    assert len(message.splitlines()) == 1 and message.startswith("spa-tune: error: "), message
    assert str(path) in message or "space.yaml" in message, message
