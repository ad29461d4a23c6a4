"""``python -m torch_impl finetune [--data DIR] --model resnet18 --mode feature-extract ...``

The command is ``finetuning.cli`` (the same for ``python -m keras_impl finetune``). Without
``--data`` the embedded toydata shapes are generated into a cache folder (nothing is downloaded).
Wrong input (data layout, size, checkpoint) ends with a one-line error and status 2.
"""
import sys
from typing import List, Optional

from finetuning import cli


def main(argv: Optional[List[str]] = None) -> int:
    return cli.main("torch", argv)


if __name__ == "__main__":
    sys.exit(main())
