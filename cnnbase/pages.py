"""Large arrays without huge-page advice, in this process and the processes it starts.

numpy advises the kernel to back every large array with transparent huge pages
(``madvise(MADV_HUGEPAGE)``). Where the kernel then defragments on demand (THP ``defrag`` set to
``madvise``, a common default), the first touch of a new array can stall while the kernel compacts
memory. On the 2-core VMs this project is measured on, touching a fresh 411 MB float32 array (VGG19's
first classifier matrix) took 0.47-2.4 s with the advice and 0.18-0.26 s without; the whole
``python -m parity export vgg19 --framework keras`` took 22.9-26.7 s with it and 19.7-21.3 s without
(three runs each, alternating). The CLIs create and transpose such arrays once, where huge pages
buy nothing, so they turn the advice off. A user's own ``NUMPY_MADVISE_HUGEPAGE`` is left alone.
"""

from __future__ import annotations

import os
import sys

ENV = "NUMPY_MADVISE_HUGEPAGE"  # numpy reads it when it is imported (children, or a numpy not loaded yet)


def prefer_small_pages() -> None:
    """Turns numpy's huge-page advice off here and in children, unless the user set ``ENV``."""
    if ENV in os.environ:
        return
    os.environ[ENV] = "0"
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return
    core = getattr(numpy, "_core", None) or getattr(numpy, "core", None)
    setter = getattr(getattr(core, "multiarray", None), "_set_madvise_hugepage", None)
    if setter is not None:  # numpy already imported: its setting was read; change it in place
        setter(False)
