"""The docs site's reference pages are written from the code: every trial key, space-file field and
command is on its page with a description, so the reference cannot fall behind the code."""

from __future__ import annotations

import argparse

from pydantic import BaseModel, Field

from spa_tune.config import TrialConfig
from spa_tune.reference import cli_page, field_rows, space_file_page, trial_keys_page
from spa_tune.spec import space

SPACE_MODELS = {
    "": space.SpaceSpec, "searcher.": space.SearcherSpec, "scheduler.": space.SchedulerSpec,
    "resources.": space.ResourcesSpec, "mlflow.": space.MlflowSpec, "grid_from_sheet.": space.SheetSpec,
}


def test_every_trial_key_has_a_description_and_a_row():
    page = trial_keys_page()
    for name, field in TrialConfig.model_fields.items():
        assert field.description, f"TrialConfig.{name} has no description"
        assert f"| `{name}` |" in page, name
    assert "| `target_remaining_pct` | float or unset | unset | > 0, <= 100 |" in page
    assert "| `precision` | `auto` \\| `fp32` \\| `bf16` \\| `fp16` | `auto` |" in page


def test_every_space_field_has_a_description_and_a_row():
    page = space_file_page()
    for prefix, model in SPACE_MODELS.items():
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            assert f"| `{prefix}{name}` |" in page, prefix + name
    for model in (space.ValuesDomain, space.RangeDomain, space.IntDomain):
        assert all(field.description for field in model.model_fields.values()), model.__name__
    assert "| `scheduler.reduction_factor` | float | `3` | > 1 |" in page
    assert "| `name` | str | required | at most 100 characters" in page


def test_the_command_line_page_has_every_command_and_option():
    page = cli_page()
    for command in ("train", "run", "validate", "sheet show", "resume", "ui", "report", "export",
                    "apply-adapter", "data generate"):
        assert f"## `spa-tune {command}`" in page, command
    assert "--tracking-uri" in page and "--adapter-only" in page


def test_a_new_parser_option_reaches_the_page():
    parser = argparse.ArgumentParser(prog="tool")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("go").add_argument("--fast-enough", help="a new option")
    page = cli_page(parser)
    assert "## `tool go`" in page and "--fast-enough" in page and "a new option" in page


def test_a_pipe_in_a_description_does_not_split_the_table_cell():
    class Probe(BaseModel):
        mode: str = Field("a", description="`a` | `b`")

    (row,) = field_rows(Probe)
    assert row.count(" | ") == 4 and "`a` \\| `b`" in row
