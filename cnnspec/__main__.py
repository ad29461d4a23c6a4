"""``python -m cnnspec summary vgg16 --size 224`` prints the spec's table; ``list`` lists models;
``weights`` lists the published checkpoints (the README's table)."""

from __future__ import annotations

import argparse
import sys

from cnnbase import cli

from . import analyse, get, names, registry, summary


def main(argv: list[str] | None = None) -> int:
    """One command; a bad input is one line and exit status 2 (cnnbase.cli)."""
    return cli.run("python -m cnnspec", _main, argv)


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnspec", description=__doc__, epilog=cli.DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list models with parameter and MAC counts")
    sub.add_parser("weights", help="published checkpoints: names, acc@1/acc@5, file size, eval resize/crop (markdown)")
    s = sub.add_parser("summary", help="per-layer table: output shape, params, MACs")
    s.add_argument("model", type=registry.model_name, metavar="MODEL")
    s.add_argument("--size", type=int, nargs="+", metavar="N", help="input height [width] (default: the model's)")
    s.add_argument("--num-classes", type=int, default=None)
    s.add_argument("--blocks", action="store_true", help="also list container rows (blocks, branches)")
    args = parser.parse_args(argv)

    if args.command == "list":
        for name in names():
            spec = get(name)
            a = analyse(spec, include_aux=False)
            size = "x".join(map(str, spec.input_size))
            print(f"{name:18s} input {size:10s} params {a.total_params:>12,}  MACs {a.total_macs / 1e9:7.3f} G")
        return 0
    if args.command == "weights":
        print(weights_table())
        return 0
    overrides = {} if args.num_classes is None else {"num_classes": args.num_classes}
    spec = get(args.model, **overrides)
    size = None
    if args.size:
        if len(args.size) > 2:
            parser.error("--size takes one or two numbers: HEIGHT [WIDTH]")
        size = (args.size[0], args.size[-1])
    print(summary(spec, size, containers=args.blocks))
    return 0


def weights_table() -> str:
    """The published weights as a markdown table (models without them are listed last, with why)."""
    from .published import no_weights_reasons, table_rows

    rows = table_rows()
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(r[k]) for k in head) + " |" for r in rows]
    lines += [f"| {m} | none: {why} |" + " |" * (len(head) - 2) for m, why in no_weights_reasons().items()]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
