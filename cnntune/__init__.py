"""cnntune: the framework-neutral fine-tuning core shared by torch_impl and keras_impl.

The options and CLI flags (:mod:`.options`), the run's policy (:mod:`.run`: seeding, input size,
checkpoint format, resume checks, history and curves), the epoch loop (:mod:`.loop`) that calls a
framework through a small adapter (:class:`.loop.Adapter`), the command line both ``python -m
torch_impl finetune`` and ``python -m keras_impl finetune`` run (:mod:`.cli`), and the project's
one atomic writer (:mod:`.atomic`). It imports no framework.
"""

from cnnbase.atomic import atomic_path, atomic_write, write_json, write_text

from .options import FinetuneOptions, add_finetune_arguments, options_from_args

__all__ = [
    "FinetuneOptions",
    "add_finetune_arguments",
    "atomic_path",
    "atomic_write",
    "options_from_args",
    "write_json",
    "write_text",
]
