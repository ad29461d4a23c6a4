"""One spec file per family; importing this package registers every model: each module here is
imported (in name order), so a new spec file needs no line anywhere else."""

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
