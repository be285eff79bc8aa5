"""The import graph of ``spa_tune`` reads as the pipeline: no import cycles, and imports only point down.

Every ``import`` counts, also those inside functions (a deferred import still couples two modules).
The layers, from the command line down to the foundations; a module may import its own layer's
package and anything below it, never above, and the packages of one layer not each other.
"""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "spa_tune"

LAYERS = [
    ["reference"],  # the docs' reference pages, written from the models and the command line
    ["cli"],
    ["experiment"],  # runs experiments: Tuner, trainable, callbacks, end-of-run summary, `spa-tune ui`
    ["report", "export"],  # reads finished trials and experiments
    ["sheet"],  # experiment sheets: read, plan, write back
    ["search"],  # Ray Tune search spaces, searchers, the stratified scheduler
    ["spec"],  # the space file and its checks
    ["trial"],  # one trial, no Ray: set-up, training loop, checkpoints, scoring
    ["storage"],  # experiment files in a folder or a bucket
    ["tracking"],  # MLflow runs
    ["model"],  # loading, injection, counting
    ["adapters"],  # SPLoPA
    ["pruning"],  # masks, binarizers, schedules
    ["strata"],  # which trials are compared
    ["trial_values"],  # a trial's values: fixed, sheet row, sampled, defaults
    ["config"],  # the trial configuration
    ["data"],  # SQuAD files, windows, metric, feature cache
    ["layout", "text_table", "files", "errors", "__init__"],
]
LAYER_OF = {unit: depth for depth, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """Module -> the spa_tune modules it imports (``from .x import y`` counts ``.x.y`` when that is a module)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("spa_tune") and target != name:
                    graph[name].add(target)
    return graph


def unit(module: str) -> str:
    """The top-level package or module of ``spa_tune`` a module belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_unit_has_a_layer():
    units = {unit(name) for name in imports()}
    assert units <= set(LAYER_OF), f"add to LAYERS: {sorted(units - set(LAYER_OF))}"


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``source imports target`` for every import of a unit at the same or a higher layer."""
    return sorted(
        f"{source} imports {target}"
        for source, targets in graph.items()
        for target in targets
        if unit(source) not in (unit(target), "__init__") and LAYER_OF[unit(target)] <= LAYER_OF[unit(source)]
    )


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return cycles


def test_imports_only_point_down_the_pipeline():
    upward = upward_imports(imports())
    assert not upward, "imports that point up or sideways:\n" + "\n".join(upward)


def test_no_import_cycles():
    cycles = import_cycles(imports())
    assert not cycles, f"import cycles: {cycles}"


def test_the_checks_find_what_this_project_once_had():
    """``tracking/ui.py`` importing ``experiment/``, ``sheet/show.py`` importing ``report/`` and
    ``experiment/finish.py`` and ``run.py`` importing each other, planted in the real graph."""
    graph = imports()
    assert "spa_tune.layout" in graph["spa_tune.trial.locate"]  # relative imports are resolved
    graph["spa_tune.tracking.mlflow_runs"].add("spa_tune.experiment.folder")
    graph["spa_tune.sheet.plan"].add("spa_tune.report.results")
    graph["spa_tune.experiment.finish"].add("spa_tune.experiment.run")
    assert upward_imports(graph) == ["spa_tune.sheet.plan imports spa_tune.report.results",
                                     "spa_tune.tracking.mlflow_runs imports spa_tune.experiment.folder"]
    assert ["spa_tune.experiment.finish", "spa_tune.experiment.run"] in import_cycles(graph)


ONE_PLACE = {
    # what is written once, and where: a trial's values from its fixed keys, sheet row and sampled keys
    # (and the defaults), and its density stratum
    r"TrialConfig\.model_fields\[|TrialConfig\.model_fields\.items\(\)": {"trial_values.py"},
    r"\.pop\((SHEET_ROW|\"sheet_row\")": {"trial_values.py"},
    r"^def (auto_stratum|stratum_of|stratum_label)\(": {"strata.py"},
    r"^def (trial_values|with_defaults|default_of|trial_config)\(": {"trial_values.py"},
    r"TrialConfig\(\*\*": {"config.py"},  # validated in one place (validate_trial_config)
    r"\{\*\*(spec\.trial|fixed|self\._?fixed|trial), \*\*": set(),  # merged by trial_values alone
    # the names of a trial's files and checkpoint folders
    r"\"(trial_state\.pt|generated-data|metrics\.jsonl|accounting\.json|block_masks\.npz|trial_config\.json)\"|"
    r"[\"']checkpoint_[\"{]": {"trial/records.py"},
}


def test_one_concept_is_written_in_one_place():
    found = {pattern: set() for pattern in ONE_PLACE}
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        for pattern in ONE_PLACE:
            if re.search(pattern, text, flags=re.MULTILINE):
                found[pattern].add(path.relative_to(PACKAGE).as_posix())
    assert found == ONE_PLACE


@pytest.mark.parametrize("category", [DeprecationWarning, PendingDeprecationWarning, FutureWarning])
def test_our_deprecation_warnings_fail_and_dependencies_are_filtered(category):
    """pyproject's filterwarnings: a deprecation attributed to a spa_tune module is an error, one
    attributed to a dependency's module is ignored."""
    with pytest.raises(category):
        warnings.warn_explicit("old API", category, "spa_tune/config.py", 1, module="spa_tune.config")
    warnings.warn_explicit("old API", category, "mlflow/store.py", 1, module="mlflow.store.tracking")
