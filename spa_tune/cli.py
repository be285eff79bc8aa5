"""spa-tune: block-structured pruning trials of BERT on SQuAD v1.1 (fine-pruning and SPLoPA)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import SpaTuneError

# Characters that end a line (str.splitlines): a value quoted in an error message shows them escaped,
# so the message stays one line.
ESCAPED_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


def cmd_train(args: argparse.Namespace) -> int:
    """Run one trial locally and print its final metrics as JSON on the last line of stdout."""
    from .config import load_trial_config, parse_overrides
    from .report.values import json_value
    from .spec.inputs import trial_input_problem
    from .trial.checkpoint import is_checkpoint
    from .trial.precision import cuda_available, precision_problem, resolve_precision
    from .trial.runner import run_trial

    cfg = load_trial_config(args.config, args.set)
    problem = trial_input_problem(cfg.model_dump())  # before output_dir is created
    if problem is not None:
        key, message = problem
        source = "--set" if key in parse_overrides(args.set) or not args.config else args.config
        raise SpaTuneError(f"{source}: {key}: {message}")
    precision = precision_problem(resolve_precision(cfg.precision, cfg.device), cfg.device, cuda_available())
    if precision is not None:
        source = "--set" if "precision" in parse_overrides(args.set) or not args.config else args.config
        raise SpaTuneError(f"{source}: precision: {precision}")
    if args.resume and not is_checkpoint(args.resume):
        raise SpaTuneError(f"--resume: {args.resume} is not a trial checkpoint folder")
    metrics = run_trial(cfg, resume_from=args.resume, progress=not args.quiet)
    if not args.per_layer:
        metrics = {k: v for k, v in metrics.items() if k != "layers"}
    print(json.dumps(json_value(metrics)), flush=True)
    return 0


def cmd_data_generate(args: argparse.Namespace) -> int:
    """Write the generated SQuAD-format train and dev files."""
    from .data.generate import write_generated_squad

    train, dev = write_generated_squad(args.out, args.train, args.eval, seed=args.seed)
    print(json.dumps({"train_file": str(train), "eval_file": str(dev)}))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Check the space file, then run its trials under Ray Tune and print the results."""
    from .experiment.run import run_experiment
    from .spec.load import load_space

    spec = load_space(args.space, (args.set or []) + sheet_overrides(args))
    return experiment_exit_code(run_experiment(spec, str(args.space), address=args.address).rows)


def sheet_overrides(args: argparse.Namespace) -> list[str]:
    """``--sheet``, ``--sheet-name``, ``--rows``, ... as ``grid_from_sheet.*`` overrides."""
    values = {
        "path": str(Path(args.sheet).expanduser().resolve()) if args.sheet else None,
        "sheet": args.sheet_name,
        "rows": args.rows,
        "include_distillation": args.include_distillation or None,
        "include_global": args.include_global or None,
        "write_back": args.write_back or None,
        "in_place": args.in_place or None,
    }
    # JSON is YAML: the values come back exactly as given (a sheet named "null" stays a string)
    return [f"grid_from_sheet.{key}={json.dumps(value)}" for key, value in values.items() if value is not None]


def experiment_exit_code(rows: list[dict]) -> int:
    """0 when every trial completed or was stopped by the scheduler, 130 when interrupted, else 1."""
    statuses = {row["status"] for row in rows}
    if "unfinished" in statuses:
        return 130
    return 1 if "failed" in statuses or not rows else 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a space file without running anything; print what it would run."""
    from .experiment.run import plan_write_back
    from .sheet.plan import check_rows_report, plan_sheet
    from .spec.load import load_space, planned_trials

    spec = load_space(args.space, (args.set or []) + sheet_overrides(args))
    plan = plan_sheet(spec, str(args.space))
    check_rows_report(plan, spec, str(args.space))
    plan_write_back(spec)  # the write-back target must be writable too
    print(f"{args.space}: ok: experiment {spec.name}, {planned_trials(spec, len(plan.rows) if plan else None)}")
    return 0


def cmd_sheet_show(args: argparse.Namespace) -> int:
    """Print the trials a sheet selection would create (table or JSON); runs nothing."""
    from .sheet.plan import plan_sheet
    from .sheet.show import format_trials
    from .spec.load import load_space
    from .spec.space import SheetSpec, SpaceSpec

    if args.space:
        spec = load_space(args.space, (args.set or []) + sheet_overrides(args))
    else:
        sheet = SheetSpec(
            path=args.sheet, sheet=args.sheet_name, rows=args.rows,
            include_distillation=args.include_distillation, include_global=args.include_global,
        )
        spec = SpaceSpec(name="sheet", grid_from_sheet=sheet)
    print(format_trials(plan_sheet(spec, str(args.space or "no space file")), args.format))
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue an interrupted experiment from its folder."""
    from .experiment.run import resume_experiment

    return experiment_exit_code(resume_experiment(args.experiment, address=args.address).rows)


def cmd_ui(args: argparse.Namespace) -> int:
    """Serve the MLflow UI of an experiment's store on 127.0.0.1 (until Ctrl-C)."""
    from .experiment.ui import serve_ui

    return serve_ui(args.experiment, host=args.host, port=args.port)


def cmd_report(args: argparse.Namespace) -> int:
    """Print the trials and both Pareto fronts of experiments (folders or MLflow names); write the plots."""
    from .report.command import run_page, run_report

    if args.format == "page":
        return run_page(args.experiments, args.out, args.command, untrained=not args.no_untrained)
    if args.out or args.command or args.no_untrained:
        raise SpaTuneError("--out, --command and --no-untrained: only with --format page")
    return run_report(args.experiments, args.format, args.tracking_uri, args.plot_dir)


def check_latency_runs(runs: int) -> None:
    """``--latency-runs`` counts timed passes: 0 (no timing) or more."""
    if runs < 0:
        raise SpaTuneError(f"--latency-runs: {runs} must be 0 (no timing) or more")


def cmd_export(args: argparse.Namespace) -> int:
    """Export a trial as a Hugging Face model folder, or a SPLoPA trial as an adapter file."""
    from .export.commands import run_export

    check_latency_runs(args.latency_runs)
    if args.max_eval_samples is not None and (args.max_eval_samples < 1 or not args.check):
        raise SpaTuneError("--max-eval-samples: a number of questions of at least 1, used only with --check")
    run = args.run
    if args.trial is not None:  # an experiment folder and one of its trials, as `spa-tune report` names them
        from .trial.locate import experiment_trial

        run = str(experiment_trial(Path(args.run).expanduser(), args.trial))
    run_export(
        run, Path(args.out).expanduser(), adapter_only=args.adapter_only, tracking_uri=args.tracking_uri,
        check=args.check, max_eval_samples=args.max_eval_samples, latency_runs=args.latency_runs, fmt=args.format,
    )
    return 0


def cmd_apply_adapter(args: argparse.Namespace) -> int:
    """Rebuild a task model from a base model and a SPLoPA adapter file."""
    from .export.commands import run_apply_adapter

    if not Path(args.adapter).is_file():
        raise SpaTuneError(f"{args.adapter}: no such adapter file")
    check_latency_runs(args.latency_runs)
    run_apply_adapter(args.base, Path(args.adapter), Path(args.out).expanduser(), latency_runs=args.latency_runs)
    return 0


def _quiet_hub_retries() -> None:
    """A failed hub request ends in spa-tune's own one-line error; hide the library's retry chatter."""
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()


def _space_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", required=True, help="search-space YAML file (docs: reference/space-file)")
    parser.add_argument(
        "--set", action="append", metavar="PATH=VALUE",
        help="override a field, e.g. num_samples=4, scheduler.grace_period=2, trial.seed=1 (repeatable)",
    )


def _sheet_arguments(parser: argparse.ArgumentParser, run: bool = True) -> None:
    parser.add_argument("--sheet-name", help='sheet of the workbook (default "Details - SQuAD" or the first "Details - *")')
    parser.add_argument("--rows", help="marked (default with a Marker column), all, 12,14-16, codes E2,D1 or EXP ID patterns")
    parser.add_argument("--include-distillation", action="store_true", help="also run distillation codes (B3 B4 C4 D3 D4 E4)")
    parser.add_argument("--include-global", action="store_true", help="also run global codes (B2 B4 D2 D4)")
    if run:
        parser.add_argument("--write-back", action="store_true", help="write EM, F1, size and the run link into the rows")
        parser.add_argument("--in-place", action="store_true", help="write back into the sheet itself (a backup is kept)")


COMMANDS = ("train", "run", "validate", "resume", "ui", "report", "data", "sheet", "export", "apply-adapter")


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="spa-tune", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="run one prune-and-adapt trial locally")
    train.add_argument("--config", help="trial YAML file (keys: docs reference/trial-keys)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a trial key (repeatable)")
    train.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint folder of an earlier run")
    train.add_argument("--per-layer", action="store_true", help="include per-layer counts in the printed JSON")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    run = sub.add_parser("run", help="run a search space as a Ray Tune experiment (same as spa-tune --space F)")
    _space_arguments(run)
    run.add_argument("--address", help="attach to a running Ray cluster (auto or host:port); default RAY_ADDRESS or a local Ray")
    run.add_argument("--sheet", help="experiment sheet (xlsx): run its rows as the trials (docs: sheets)")
    _sheet_arguments(run)
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check a space file (and its sheet rows) without running it")
    _space_arguments(validate)
    validate.add_argument("--sheet", help="experiment sheet (xlsx) whose rows the space runs")
    _sheet_arguments(validate)
    validate.set_defaults(func=cmd_validate)

    sheet = sub.add_parser("sheet", help="experiment sheets")
    sheet_sub = sheet.add_subparsers(dest="sheet_command", required=True)
    show = sheet_sub.add_parser("show", help="print the trials a sheet selection would create, without running them")
    show.add_argument("sheet", help="experiment sheet (xlsx)")
    _sheet_arguments(show, run=False)
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.add_argument("--space", help="space file whose trial section fills what the sheet leaves empty")
    show.add_argument("--set", action="append", metavar="PATH=VALUE", help="override a field of the space file")
    show.set_defaults(func=cmd_sheet_show, write_back=False, in_place=False)

    resume = sub.add_parser("resume", help="continue an interrupted experiment")
    resume.add_argument("experiment", help="experiment folder (<storage_path>/<name>)")
    resume.add_argument("--address", help="attach to a running Ray cluster instead of starting a local one")
    resume.set_defaults(func=cmd_resume)

    ui = sub.add_parser("ui", help="open the MLflow UI of an experiment")
    ui.add_argument("experiment", help="experiment folder (<storage_path>/<name>)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=cmd_ui)

    report = sub.add_parser("report", help="trials and Pareto fronts of experiments, combined")
    report.add_argument("experiments", nargs="+", metavar="EXPERIMENT",
                        help="experiment folder (<storage_path>/<name>), its URI (s3://bucket/runs/<name>) or MLflow experiment name")
    report.add_argument("--format", default="table",
                        help="table (default), csv, json, markdown, or page (the results page of experiment folders)")
    report.add_argument("--out", help="with --format page: the page to write (its plot goes beside it)")
    report.add_argument("--command", action="append", default=[],
                        help="with --format page: the command that ran an experiment, quoted (once per experiment)")
    report.add_argument("--no-untrained", action="store_true", help="with --format page: do not score the untrained model")
    report.add_argument("--tracking-uri", help="store of MLflow names (default MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    report.add_argument("--plot-dir", default=".", help="folder for pareto.png and pareto_learned.png (default: here)")
    report.set_defaults(func=cmd_report)

    export = sub.add_parser("export", help="export a trial: Hugging Face model folder, ONNX file or SPLoPA adapter file")
    export.add_argument("run", help="trial or checkpoint folder, its URI (s3://.../trial_<id>), MLflow run id, "
                        "or an experiment folder with --trial")
    export.add_argument("--trial", metavar="ID", help="with an experiment folder: the trial to export (its trial_id)")
    export.add_argument("--out", required=True, help="new folder (model) or file (--adapter-only); never overwritten")
    export.add_argument("--format", choices=("hf", "onnx"), default="hf",
                        help="hf: Hugging Face model folder; onnx: model.onnx of the pruned network for onnxruntime")
    export.add_argument("--adapter-only", action="store_true", help="SPLoPA: write only the adapter (safetensors file)")
    export.add_argument("--tracking-uri", help="MLflow store of a run id (default MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    export.add_argument("--check", action="store_true", help="score masked and exported model on the trial's eval set")
    export.add_argument("--max-eval-samples", type=int, help="with --check: only the first N questions")
    export.add_argument("--latency-runs", type=int, default=20, help="timed forward passes per model (0: no timing)")
    export.set_defaults(func=cmd_export)

    apply = sub.add_parser("apply-adapter", help="rebuild a task model from a base model and a SPLoPA adapter file")
    apply.add_argument("base", help="base model: hub name, local folder or minilm")
    apply.add_argument("adapter", help="adapter file written by spa-tune export --adapter-only")
    apply.add_argument("--out", required=True, help="new model folder (never overwritten)")
    apply.add_argument("--latency-runs", type=int, default=20, help="timed forward passes per model (0: no timing)")
    apply.set_defaults(func=cmd_apply_adapter)

    data = sub.add_parser("data", help="data utilities")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    gen = data_sub.add_parser("generate", help="write a small learnable SQuAD-format data set")
    gen.add_argument("--out", required=True, help="output folder (train.json, dev.json)")
    gen.add_argument("--train", type=int, default=2000, help="number of training questions")
    gen.add_argument("--eval", type=int, default=300, help="number of evaluation questions")
    gen.add_argument("--seed", type=int, default=0)
    gen.set_defaults(func=cmd_data_generate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, run, turn user errors into one line on stderr and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="spa-tune: %(levelname)s: %(message)s")
    _quiet_hub_retries()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv.insert(0, "run")  # spa-tune --space F is spa-tune run --space F
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SpaTuneError as err:
        print(f"spa-tune: error: {str(err).translate(ESCAPED_LINE_BREAKS)}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("spa-tune: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
