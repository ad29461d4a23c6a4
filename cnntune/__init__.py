"""cnntune: the framework-neutral fine-tuning core shared by torch_impl and keras_impl.

The options and CLI flags (:mod:`.options`), the run's policy (:mod:`.policy`: defaults, seeding,
input size, which layers train, the learning-rate table, checkpoint format, resume checks, history
and curves), the epoch loop (:mod:`.loop`) that calls a framework through a small adapter
(:class:`.loop.Adapter`), the image-folder checks (:mod:`.folders`), and the command line both
``python -m torch_impl finetune`` and ``python -m keras_impl finetune`` run (:mod:`.cli`). It
imports no framework; its files are written by :mod:`cnnbase.atomic`.
"""

from cnnbase.version import __version__ as __version__

from .options import FinetuneOptions, add_finetune_arguments, options_from_args

__all__ = ["FinetuneOptions", "add_finetune_arguments", "options_from_args"]
