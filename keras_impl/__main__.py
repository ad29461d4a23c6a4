"""``python -m keras_impl finetune [--data DIR] --model resnet18 --mode feature-extract ...``

The command is ``cnntune.cli`` (the same for ``python -m torch_impl finetune``); the Keras
backend is the usual ``KERAS_BACKEND``. ``--weights`` takes published weights (``imagenet``,
``IMAGENET1K_V1``) or a Keras ``.weights.h5`` (a torch checkpoint converts with ``python -m parity
convert``). Wrong input ends with a one-line error and status 2.
"""

import sys

from cnntune import cli


def main(argv: list[str] | None = None) -> int:
    return cli.main("keras", argv)


if __name__ == "__main__":
    sys.exit(main())
