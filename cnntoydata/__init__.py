"""cnntoydata: a small embedded image dataset of coloured shapes, in ImageFolder layout.

Transfer-learning demos and tests need images, and nothing may be downloaded: this draws them.
Every image is a function of (seed, split, shape, index) only, so the same call gives the same
bytes on every machine, and asking for fewer classes or images never changes the others.
Shapes have a random position, size, small rotation, colour and a noisy background, so a model has
to learn the outline, not a colour. Framework-free (numpy + Pillow): torch_impl and keras_impl
both read it.

Example (``root/train/diamond/diamond_0000.png`` ...)::

    import cnntoydata
    root = cnntoydata.generate("shapes", part="target", train_per_class=10, val_per_class=10)

``python -m cnntoydata DIR`` writes the same from the shell.
"""

from __future__ import annotations

from cnnbase.version import __version__ as __version__

from .shapes import PARTS, SHAPES, draw
from .writer import default_root, ensure, generate

__all__ = ["PARTS", "SHAPES", "default_root", "draw", "ensure", "generate"]
