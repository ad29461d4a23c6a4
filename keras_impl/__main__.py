"""``python -m keras_impl finetune [--data DIR] --model resnet18 --mode feature-extract ...``

The flags are ``python -m torch_impl finetune``'s, from ``toydata.cli``; ``--weights`` takes a
Keras ``.weights.h5`` (a torch checkpoint converts with ``python -m parity convert``). The Keras
backend is the usual ``KERAS_BACKEND`` (default tensorflow). Without ``--data`` the embedded
toydata shapes are generated into a cache folder (nothing is downloaded). Wrong input (data
layout, size, weights, checkpoint) ends with a one-line error and status 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import cnnspec
from toydata.cli import add_finetune_arguments, options_from_args


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m keras_impl", description="keras_impl commands")
    commands = parser.add_subparsers(dest="command", required=True)
    finetune = commands.add_parser(
        "finetune",
        help="transfer learning on an image folder (train/<class>/, val/<class>/)",
        description="Feature extraction or fine-tuning of a classic CNN on an image folder, in Keras; "
        "writes best/last checkpoints (.weights.h5), history.json and curves.png to --out. "
        "--weights takes a Keras .weights.h5: convert a torch checkpoint with "
        "`python -m parity convert --model NAME SRC.pth DST.weights.h5`.",
    )
    add_finetune_arguments(finetune, models=cnnspec.names())
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        options = options_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    from .finetune import finetune

    try:
        result = finetune(options)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"python -m keras_impl finetune: error: {err}", file=sys.stderr)
        return 2
    print(f"best val accuracy {result.best_val_acc:.4f} at epoch {result.best_epoch}; "
          f"checkpoint {result.best_checkpoint}, history {result.history_path}, plot {result.plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
