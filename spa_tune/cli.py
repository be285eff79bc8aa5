"""spa-tune: block-structured pruning trials of BERT on SQuAD v1.1 (fine-pruning and SPLoPA)."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Sequence

from .errors import SpaTuneError


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def cmd_train(args: argparse.Namespace) -> int:
    """Run one trial locally and print its final metrics as JSON on the last line of stdout."""
    from .config import load_trial_config
    from .trial.checkpoint import is_checkpoint
    from .trial.runner import run_trial

    cfg = load_trial_config(args.config, args.set)
    if args.resume and not is_checkpoint(args.resume):
        raise SpaTuneError(f"--resume: {args.resume} is not a trial checkpoint folder")
    metrics = run_trial(cfg, resume_from=args.resume, progress=not args.quiet)
    if not args.per_layer:
        metrics = {k: v for k, v in metrics.items() if k != "layers"}
    print(json.dumps(_json_safe(metrics)), flush=True)
    return 0


def cmd_data_generate(args: argparse.Namespace) -> int:
    """Write the generated SQuAD-format train and dev files."""
    from .data.generate import write_generated_squad

    train, dev = write_generated_squad(args.out, args.train, args.eval, seed=args.seed)
    print(json.dumps({"train_file": str(train), "eval_file": str(dev)}))
    return 0


def _quiet_hub_retries() -> None:
    """A failed hub request ends in spa-tune's own one-line error; hide the library's retry chatter."""
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.set_verbosity_error()


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of every sub-command."""
    parser = argparse.ArgumentParser(prog="spa-tune", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="run one prune-and-adapt trial locally")
    train.add_argument("--config", help="trial YAML file (keys: see README)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a trial key (repeatable)")
    train.add_argument("--resume", metavar="CHECKPOINT", help="continue from a checkpoint folder of an earlier run")
    train.add_argument("--per-layer", action="store_true", help="include per-layer counts in the printed JSON")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

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
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SpaTuneError as err:
        print(f"spa-tune: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("spa-tune: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
