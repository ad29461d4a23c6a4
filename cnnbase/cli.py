"""What every command line of the project shares (``parity``, ``cnnspec``, ``torch_impl``,
``keras_impl``, ``cnntoydata``, the benchmarks): one error discipline and quiet framework logs.

- A bad input ends with one line on stderr, ``<prog>: error: <what was expected, what was
  given>``, and exit status 2 (argparse's own errors look the same). ``--debug`` anywhere on the
  command line shows the traceback instead.
- An error that is not about the input (a bug) is also one line, exit status 1, naming
  ``--debug``: a user should never have to read a framework's traceback to learn what went wrong.
- Framework start-up lines that are not about the user's input (TensorFlow's CUDA probing on a
  machine without a GPU, oneDNN's notice on AVX-512 CPUs, absl's "log messages before
  InitializeLog") stay off stderr, on every CPU class (:mod:`cnnbase.startup_lines`).
  ``TF_CPP_MIN_LOG_LEVEL=0`` set by the user brings them back.
- numpy's huge-page advice is off (:mod:`cnnbase.pages`: it stalled first touches of large arrays on
  kernels that defragment on demand).

Framework-free, like the rest of ``cnnspec``: the CLIs call :func:`run` before they import one.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence

from . import pages, startup_lines

DEBUG_FLAG = "--debug"
DEBUG_HELP = f"{DEBUG_FLAG} (anywhere on the command line) shows the traceback of an error"
# the exceptions this project raises for input it cannot use (checked at the entry points), and
# RuntimeError: what torch raises for a state_dict that does not fit, what this project raises
# when a subprocess or a verification fails; a bug is anything else (AttributeError, IndexError, ...)
INPUT_ERRORS = (ValueError, TypeError, KeyError, LookupError, OSError, EOFError, RuntimeError)

QUIET_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # TensorFlow's C++ logging: cuInit probing, oneDNN notices, cpu feature lines
    "GRPC_VERBOSITY": "ERROR",
    "GLOG_minloglevel": "2",
}


def quiet_framework_logs() -> None:
    """Keeps framework start-up noise off stderr; call before a framework is imported. Values the
    user exported are left alone, and ``TF_CPP_MIN_LOG_LEVEL=0`` (every line, the user's choice)
    brings TensorFlow's start-up lines back; any other level, the user's or inherited from a
    parent CLI (keras_impl running parity fetch, a backend's parity run), keeps them off."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() != "0":
        startup_lines.install()  # what loading TensorFlow's libraries prints, which no level silences
    for key, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name a misspelt ``name`` most likely meant (case and separators ignored), or None."""
    known = list(known)

    def norm(s: str) -> str:
        return s.lower().replace("-", "_").replace(" ", "")

    by_norm = {norm(k): k for k in known}
    if norm(name) in by_norm:
        return by_norm[norm(name)]
    match = difflib.get_close_matches(norm(name), list(by_norm), n=1, cutoff=0.6)
    return by_norm[match[0]] if match else None


def unknown_name_message(kind: str, name: str, known: Sequence[str]) -> str:
    """``unknown model 'resnt18': did you mean 'resnet18'? (expected one of: ...)``"""
    guess = closest(name, known)
    hint = f"did you mean {guess!r}? " if guess else ""
    return f"unknown {kind} {name!r}: {hint}(expected one of: {', '.join(known)})"


def message(err: BaseException) -> str:
    """An exception as one line (a KeyError's text without the quotes repr adds)."""
    text = err.args[0] if isinstance(err, KeyError) and len(err.args) == 1 else err
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if (
        lines[0].startswith("Caught ") and len(lines) > 1
    ):  # torch's DataLoader worker wrapper: the original error is last
        return lines[-1].split(": ", 1)[-1]
    return re.sub(r"^\[Errno \d+\] ", "", lines[0])  # an OSError's number says nothing its text does not


def run(prog: str, main: Callable[[list[str]], int], argv: Sequence[str] | None = None) -> int:
    """Runs ``main(argv)`` under the error discipline above and returns its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args
    args = [a for a in args if a != DEBUG_FLAG]
    quiet_framework_logs()
    pages.prefer_small_pages()
    try:
        return main(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except INPUT_ERRORS as err:
        if debug:
            raise
        print(f"{prog}: error: {message(err)}", file=sys.stderr)
        return 2
    except Exception as err:
        if debug:
            raise
        where = traceback.extract_tb(err.__traceback__)[-1]
        print(
            f"{prog}: internal error: {type(err).__name__}: {message(err)} "
            f"(at {os.path.basename(where.filename)}:{where.lineno}; run again with {DEBUG_FLAG} for the traceback)",
            file=sys.stderr,
        )
        return 1
