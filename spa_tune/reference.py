"""Reference pages written from the code, so they cannot drift from it: every trial key and every
space-file field (type, default, range, description, from the pydantic models) and every command
(from the argument parser). The docs site builds them with ``docs/gen_reference.py``.
"""

from __future__ import annotations

import argparse
import os
import types
import typing
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

# Headings of the trial-key page: the first key of each group, in the model's order.
TRIAL_KEY_GROUPS = {
    "method": "What to train",
    "dataset": "Data",
    "per_gpu_train_batch_size": "Optimisation",
    "pruning_method": "Pruning",
    "regularization": "Regularization",
    "teacher_type": "Distillation",
    "num_splopa_prototypes": "SPLoPA",
}

_BOUNDS = (
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "<="),
    (annotated_types.Lt, "lt", "<"),
)


def _cell(text: str) -> str:
    """``text`` made safe for one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def type_name(annotation: Any) -> str:
    """A reader's name for a field type: ``int``, ``float or unset``, ``"`a` | `b`"``, ``list of ...``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " | ".join(f"`{value}`" for value in args)
    if origin in (typing.Union, types.UnionType):
        named = [type_name(arg) for arg in args if arg is not type(None)]
        text = " or ".join(named)
        return f"{text} or unset" if type(None) in args else text
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def default_text(field: FieldInfo) -> str:
    """The field's default as written in YAML, or ``required``."""
    if field.default_factory is not None:
        value = field.default_factory()
        return "(section defaults)" if isinstance(value, BaseModel) else f"`{value!r}`"
    if field.is_required():
        return "required"
    if field.default is None:
        return "unset"
    value = field.default
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def range_text(field: FieldInfo) -> str:
    """Bounds and length or pattern limits of a field, e.g. ``> 0, <= 100``; empty when unlimited."""
    parts = []
    for item in field.metadata:
        for kind, attr, sign in _BOUNDS:
            if isinstance(item, kind):
                parts.append(f"{sign} {getattr(item, attr):g}")
        if isinstance(item, annotated_types.MinLen):
            parts.append(f"at least {item.min_length} item(s)")
        if isinstance(item, annotated_types.MaxLen):
            parts.append(f"at most {item.max_length} characters")
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            parts.append(f"matches `{pattern}`")
    return ", ".join(parts)


def field_rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Markdown table rows (key, type, default, range, description) of ``model``'s fields."""
    rows = []
    for name, field in model.model_fields.items():
        cells = [f"`{prefix}{name}`", type_name(field.annotation), default_text(field), range_text(field),
                 field.description or ""]
        rows.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return rows


TABLE_HEAD = ["| key | type | default | range | meaning |", "| --- | --- | --- | --- | --- |"]


def trial_keys_page() -> str:
    """The trial-key reference: one table per group of :class:`~spa_tune.config.TrialConfig`."""
    from .config import TrialConfig

    lines = [
        "# Trial keys",
        "",
        "Every key a trial takes, written from `spa_tune.config.TrialConfig` (this page is generated when "
        "the docs are built). The keys are the original experiments' command-line flags, which are also the "
        "columns of their spreadsheet, plus `method`, `model`, the data keys and the SPLoPA keys. A space file's `trial` section, a `search` domain, a sheet column, "
        "`spa-tune train --config` and `--set key=value` all use these keys; values are read as YAML. "
        "Rules that join several keys (for example `doc_stride` below `max_seq_length - max_query_length - 3`, "
        "`target_remaining_pct` not with `method: dense`) are listed in [rejected input](rejected-input.md).",
    ]
    rows = field_rows(TrialConfig)
    for name, row in zip(TrialConfig.model_fields, rows):
        if name in TRIAL_KEY_GROUPS:
            lines += ["", f"## {TRIAL_KEY_GROUPS[name]}", "", *TABLE_HEAD]
        lines.append(row)
    return "\n".join(lines) + "\n"


def space_file_page() -> str:
    """The space-file reference: the top-level fields, each section's fields, and the search domains."""
    from .spec import space

    sections = [
        ("searcher", space.SearcherSpec), ("scheduler", space.SchedulerSpec),
        ("resources", space.ResourcesSpec), ("mlflow", space.MlflowSpec), ("grid_from_sheet", space.SheetSpec),
    ]
    lines = [
        "# Space file",
        "",
        "Every field of a search-space file, written from `spa_tune.spec.space` (this page is generated "
        "when the docs are built). [Experiments](../experiments.md) shows a whole file; the `trial` section "
        "takes the [trial keys](trial-keys.md).",
        "",
        "## Top level",
        "",
        *TABLE_HEAD,
        *field_rows(space.SpaceSpec),
    ]
    for name, model in sections:
        lines += ["", f"## `{name}`", "", (model.__doc__ or "").strip(), "", *TABLE_HEAD,
                  *field_rows(model, f"{name}.")]
    lines += ["", "## `search` domains", "",
              "`search.<trial key>` is one of these mappings; each value it can take is checked against the "
              "trial key's own type and range before Ray starts."]
    for model in (space.ValuesDomain, space.RangeDomain, space.IntDomain):
        lines += ["", f"### {model.__name__}", "", (model.__doc__ or "").strip(), "", *TABLE_HEAD,
                  *field_rows(model)]
    return "\n".join(lines) + "\n"


def _subcommands(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.ArgumentParser]]:
    """``(command path, parser)`` for ``parser`` and every sub-command under it, depth first."""
    found = [(path, parser)]
    for action in parser._actions:  # argparse has no public walk over sub-parsers
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _subcommands(sub, f"{path} {name}")
    return found


def cli_page(parser: argparse.ArgumentParser | None = None) -> str:
    """The command-line reference: every command's ``--help`` text, as the parser prints it."""
    if parser is None:
        from .cli import build_parser

        parser = build_parser()
    lines = [
        "# Command line",
        "",
        "Every `spa-tune` command and option, as `--help` prints them (this page is generated from the "
        "argument parser when the docs are built). A mistake in any input is one line on stderr and exit "
        "code 2 ([rejected input](rejected-input.md)).",
    ]
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # the same wrapping wherever the docs are built
    try:
        for path, sub in _subcommands(parser, parser.prog):
            lines += ["", f"## `{path}`", "", "```text", sub.format_help().rstrip(), "```"]
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved
    return "\n".join(lines) + "\n"
