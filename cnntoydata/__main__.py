"""``python -m cnntoydata DIR [--part target] [--train 20] [--val 10] [--size 64] [--seed 0]``"""

from __future__ import annotations

import argparse
import sys
import time

from cnnbase import cli

from . import PARTS, SHAPES, generate


def main(argv: list[str] | None = None) -> int:
    """Writes the folder; a bad input is one line and exit status 2 (cnnbase.cli)."""
    return cli.run("python -m cnntoydata", _main, argv)


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cnntoydata",
        description="Write the embedded shapes dataset in ImageFolder layout.",
        epilog=cli.DEBUG_HELP,
    )
    parser.add_argument("root", metavar="DIR", help="folder to create (DIR/train/<class>/*.png, DIR/val/<class>/*.png)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--part", choices=sorted(PARTS), help=f"one disjoint half of the shapes: {dict(PARTS)}")
    which.add_argument(
        "--classes", nargs="+", choices=SHAPES, metavar="SHAPE", help=f"shapes by name, from {', '.join(SHAPES)}"
    )
    parser.add_argument("--train", type=int, default=20, help="images per class in train/ (default 20)")
    parser.add_argument("--val", type=int, default=10, help="images per class in val/ (default 10)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--noise", type=float, default=12.0, help="std of the Gaussian pixel noise, 0-255 scale (default 12)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it holds something else")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    root = generate(
        args.root,
        classes=args.classes,
        part=args.part,
        train_per_class=args.train,
        val_per_class=args.val,
        size=args.size,
        seed=args.seed,
        noise=args.noise,
        overwrite=args.overwrite,
    )
    classes = sorted(p.name for p in (root / "train").iterdir())
    print(
        f"{root}: {len(classes)} classes {classes}, {args.train}+{args.val} images per class, "
        f"{time.perf_counter() - start:.2f}s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
