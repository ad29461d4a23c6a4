"""The project's version, read once from the installed distribution's metadata (pyproject.toml is
the one source): every package's ``__version__`` is this."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "classic-cnns"


def installed_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


__version__ = installed_version()
