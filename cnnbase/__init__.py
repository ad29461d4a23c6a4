"""cnnbase: what every layer of the project shares and nothing else.

The one atomic writer (:mod:`.atomic`), the one-line error discipline of every command line
(:mod:`.cli`), the filter of TensorFlow's start-up lines (:mod:`.startup_lines`), the kinds of
weight files (:mod:`.weight_files`) and the version (:mod:`.version`). Imports nothing of the
project and no framework.
"""

from .version import __version__

__all__ = ["__version__"]
