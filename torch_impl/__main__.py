"""``python -m torch_impl finetune [--data DIR] --model resnet18 --mode feature-extract ...``

The command is ``cnntune.cli`` (the same for ``python -m keras_impl finetune``). Without
``--data`` the embedded cnntoydata shapes are generated into a cache folder (nothing is downloaded).
Wrong input (data layout, size, checkpoint) ends with a one-line error and status 2.
"""

import sys

from cnntune import cli


def main(argv: list[str] | None = None) -> int:
    return cli.main("torch", argv)


if __name__ == "__main__":
    sys.exit(main())
