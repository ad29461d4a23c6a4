"""The ``finetune`` command, written once: ``python -m torch_impl finetune`` and ``python -m
keras_impl finetune`` are this function with their framework's name, so they take the same flags,
refuse bad input with the same one-line errors (exit status 2) and print the same lines.
"""

from __future__ import annotations

import argparse
import importlib

import cnnspec
from cnnbase import cli

from .options import add_finetune_arguments, options_from_args

DESCRIPTION = (
    "Feature extraction or fine-tuning of a classic CNN on an image folder (train/<class>/, val/<class>/), "
    "from published weights (--weights IMAGENET1K_V1 / imagenet), a checkpoint, or from scratch; writes "
    "best/last checkpoints, history.json and curves.png to --out."
)


def build_parser(framework: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {framework}_impl", description=f"{framework}_impl commands", epilog=cli.DEBUG_HELP
    )
    commands = parser.add_subparsers(dest="command", required=True)
    finetune = commands.add_parser(
        "finetune", help="transfer learning on an image folder (train/<class>/, val/<class>/)", description=DESCRIPTION
    )
    add_finetune_arguments(finetune, models=cnnspec.names())
    finetune.set_defaults(command_parser=finetune)  # errors then print the subcommand's usage
    return parser


def main(framework: str, argv: list[str] | None = None) -> int:
    """Parses the flags, runs ``<framework>_impl.finetune.finetune`` and prints where the results went;
    a bad input is one line and exit status 2 (cnnbase.cli; --debug shows the traceback)."""
    return cli.run(f"python -m {framework}_impl finetune", lambda args: _main(framework, args), argv)


def _main(framework: str, argv: list[str]) -> int:
    parser = build_parser(framework)
    args = parser.parse_args(argv)
    try:
        options = options_from_args(args)
    except ValueError as err:
        args.command_parser.error(str(err))
    finetune = importlib.import_module(
        f"{framework}_impl.finetune"
    ).finetune  # the framework loads once the flags are good
    result = finetune(options)
    if not result.is_main:  # another process of a distributed run: rank 0 reports
        return 0
    print(
        f"best val accuracy {result.best_val_acc:.4f} at epoch {result.best_epoch}; "
        f"checkpoint {result.best_checkpoint}, history {result.history_path}, plot {result.plot_path}"
    )
    return 0
