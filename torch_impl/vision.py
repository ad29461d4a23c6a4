"""torchvision, imported where it cannot crash the process.

torchvision's native extension segfaults (the process dies, no traceback) when TensorFlow's
libraries were loaded first in the same process (DESIGN.md; measured: ``import keras; import
torchvision`` exits with signal 11 on the tensorflow backend; jax's libraries are harmless).
Every torchvision import of this project goes through :func:`torchvision` so that order gives one
clear ImportError instead.
"""

from __future__ import annotations

import sys
from types import ModuleType

CRASHES_AFTER = ("tensorflow",)


def order_problem() -> str:
    """Why importing torchvision now would crash, or '' when it is safe."""
    if "torchvision" in sys.modules:
        return ""
    loaded = [name for name in CRASHES_AFTER if name in sys.modules]
    if not loaded:
        return ""
    return (
        f"torchvision cannot be imported after {loaded[0]} in one process (its native extension crashes the process); "
        f"import torch_impl or parity before keras/tensorflow, or run the Keras side in another process"
    )


def torchvision() -> ModuleType:
    """The torchvision module, or one ImportError where importing it would segfault."""
    problem = order_problem()
    if problem:
        raise ImportError(problem)
    import torchvision as module

    return module
