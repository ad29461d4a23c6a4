"""The import order of the two frameworks; imported first by :mod:`parity`, for that alone.

parity is the one package that loads torch and Keras in one process, and the order matters:
torchvision's native extension segfaults (the process dies, no traceback) when TensorFlow's
libraries were loaded before it (see :mod:`torch_impl.vision`). So importing parity loads torch,
and torchvision where it is installed, before anything of parity imports Keras. Where TensorFlow
is already loaded (the user imported keras first), torchvision is left alone: what needs it then
gets :mod:`torch_impl.vision`'s one clear ImportError instead of a crash.
"""

import torch  # noqa: F401  (the import order is this module's job)

from torch_impl.vision import order_problem

if not order_problem():
    try:
        import torchvision  # noqa: F401
    except ImportError:  # pragma: no cover  (torchvision is optional)
        pass
