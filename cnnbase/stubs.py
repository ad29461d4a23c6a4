"""Type stubs for packages whose public names are made at run time (one factory per registered
model, added by a module ``__getattr__``): no checker or IDE can see those, so each such package
ships an ``__init__.pyi`` rendered from the live objects' signatures, and a test keeps it equal::

    python -m cnnbase.stubs torch_impl keras_impl           # rewrites <package>/__init__.pyi
    python -m cnnbase.stubs --check torch_impl keras_impl   # exit 1, naming each stale stub

A public name that its home module defines in source is re-exported from there (the checker reads
that module); one made at run time is written as a ``def`` with the signature ``inspect`` reports,
annotations included, which the factories set from the spec's builders.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path
from types import ModuleType
from typing import Any

from .atomic import write_text
from .cli import run

# where the typing names that annotations use come from
_TYPING_HOMES = {
    "Any": "typing",
    "Literal": "typing",
    "overload": "typing",
    "Callable": "collections.abc",
    "Iterable": "collections.abc",
    "Sequence": "collections.abc",
    "Mapping": "collections.abc",
}
_WIDTH = 120  # the project's line length
_IDENTIFIER = re.compile(r"[A-Za-z_][\w.]*")


@cache
def _static_names(module_name: str) -> frozenset[str]:
    """The names a module binds at top level in its source (definitions, assignments, imports);
    read once per module, though a package re-exports many names from one."""
    module = sys.modules[module_name]
    tree = ast.parse(Path(inspect.getfile(module)).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return frozenset(names)


def _annotation_text(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _imports_for(text: str, fn: Callable[..., Any]) -> set[str]:
    """The import lines an annotation needs, resolved where the function was defined:
    ``keras.Model`` -> ``import keras``; ``nn.Module`` (``from torch import nn`` there) ->
    ``import torch.nn as nn``; ``Any`` -> typing; any other bare name from the defining module."""
    namespace = getattr(fn, "__globals__", vars(sys.modules[fn.__module__]))
    lines = set()
    for word in _IDENTIFIER.findall(text):
        head = word.split(".")[0]
        if "." in word:
            module = namespace.get(head) or importlib.import_module(head)
            path = ".".join([module.__name__, *word.split(".")[1:-1]])
            alias = "" if module.__name__ == head else f" as {head}"
            lines.add(f"import {path}{alias}")
        elif word in _TYPING_HOMES:
            lines.add(f"from {_TYPING_HOMES[word]} import {word}")
        elif not hasattr(builtins, word):
            lines.add(f"from {fn.__module__} import {word}")
    return lines


def _literal(value: Any) -> str:
    """A default as the formatter writes it (double quotes)."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _render_function(name: str, fn: Callable[..., Any]) -> tuple[str, set[str]]:
    """``def name(<signature>) -> <return>: ...`` and the imports its annotations need; a function
    whose ``__overloads__`` lists signatures (a return type that depends on an argument) gets one
    ``@overload`` each."""
    overloads = getattr(fn, "__overloads__", None)
    if overloads:
        texts, imports = [], {"from typing import overload"}
        for signature in overloads:
            text, needed = _render_signature(name, fn, signature)
            texts.append(f"@overload\n{text}")
            imports |= needed
        return "\n".join(texts), imports
    return _render_signature(name, fn, inspect.signature(fn))


def _render_signature(name: str, fn: Callable[..., Any], signature: inspect.Signature) -> tuple[str, set[str]]:
    imports: set[str] = set()
    parts: list[str] = []
    params = list(signature.parameters.values())
    for i, p in enumerate(params):
        if p.kind == p.KEYWORD_ONLY and (i == 0 or params[i - 1].kind not in (p.KEYWORD_ONLY, p.VAR_POSITIONAL)):
            parts.append("*")
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
        if p.annotation is not p.empty:
            annotation = _annotation_text(p.annotation)
            imports |= _imports_for(annotation, fn)
            text += f": {annotation}"
        if p.default is not p.empty:
            text += f" = {_literal(p.default)}" if p.annotation is not p.empty else f"={_literal(p.default)}"
        parts.append(text)
        if p.kind == p.POSITIONAL_ONLY and (i + 1 == len(params) or params[i + 1].kind != p.POSITIONAL_ONLY):
            parts.append("/")
    returns = ""
    if signature.return_annotation is not signature.empty:
        annotation = _annotation_text(signature.return_annotation)
        imports |= _imports_for(annotation, fn)
        returns = f" -> {annotation}"
    line = f"def {name}({', '.join(parts)}){returns}: ..."
    if len(line) > _WIDTH:
        line = f"def {name}(\n" + "".join(f"    {part},\n" for part in parts) + f"){returns}: ..."
    return line, imports


def _reexport_lines(home: str, names: set[str]) -> list[str]:
    """``from home import a as a``: the explicit re-export form, one name a line (isort's way)."""
    return [f"from {home} import {n} as {n}" for n in names]


def _sort_key(line: str) -> tuple:
    """isort's order inside a section: ``import x`` first, then by module, then constants, classes, the rest."""
    words = line.split()
    name = words[3] if words[0] == "from" else ""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return (words[0] == "from", words[1], kind, name)


def _sections(lines: set[str], package: str) -> list[str]:
    """Standard library, third party, then this project (the package's distribution), blank-separated."""
    own = set(packages_distributions().get(package.split(".")[0], ()))

    def section(line: str) -> int:
        top = line.split()[1].split(".")[0]
        if top in sys.stdlib_module_names:
            return 0
        return 2 if own & set(packages_distributions().get(top, ())) else 1

    out: list[str] = []
    for number in range(3):
        chosen = sorted((line for line in _combined(lines) if section(line) == number), key=_sort_key)
        out += [*chosen, ""] if chosen else []
    return out


def _combined(lines: set[str]) -> set[str]:
    """Plain ``from x import a`` lines of one module joined into one (``as`` re-exports stay apart)."""
    plain: dict[str, list[str]] = {}
    for line in lines:
        words = line.split()
        if words[0] == "from" and len(words) == 4:
            plain.setdefault(words[1], []).append(words[3])
    out = {line for line in lines if not (line.split()[0] == "from" and len(line.split()) == 4)}
    for module, names in plain.items():
        names = sorted(names, key=lambda n: (0 if n.isupper() else 1 if n[:1].isupper() else 2, n))
        line = f"from {module} import {', '.join(names)}"
        if len(line) > _WIDTH:
            line = f"from {module} import (\n" + "".join(f"    {n},\n" for n in names) + ")"
        out.add(line)
    return out


def render(package: str) -> str:
    """The ``__init__.pyi`` text for ``package``: every name of its ``__all__`` and ``__version__``."""
    module: ModuleType = importlib.import_module(package)
    imports: set[str] = set()
    reexports: dict[str, set[str]] = {}
    defs: list[str] = []
    for name in sorted(set(module.__all__)):
        obj = getattr(module, name)
        home = getattr(obj, "__module__", None)
        if isinstance(obj, ModuleType):
            reexports.setdefault(package, set()).add(name)
        elif home and home in sys.modules and name in _static_names(home):
            reexports.setdefault(home, set()).add(name)
        elif callable(obj):
            text, needed = _render_function(name, obj)
            defs.append(text)
            imports |= needed
        else:
            defs.append(f"{name}: {type(obj).__name__}")
    exported = {n for names in reexports.values() for n in names}
    imports = {i for i in imports if not (i.startswith("from ") and i.rsplit(" ", 1)[-1] in exported)}
    imports.add("from cnnbase.version import __version__ as __version__")
    for home, names in reexports.items():
        imports.update(_reexport_lines(home, names))
    lines = [
        f"# Generated by `python -m cnnbase.stubs {package}` from the live package: do not edit.",
        "# tests/test_stubs.py fails when it differs from what the package exports.",
        "",
        *_sections(imports, package),
        *defs,
        "",
    ]
    return "\n".join(lines)


def stub_path(package: str) -> Path:
    return Path(inspect.getfile(importlib.import_module(package))).with_name("__init__.pyi")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cnnbase.stubs", description=__doc__.split("\n\n")[0])
    parser.add_argument("packages", nargs="+", help="packages whose __init__.pyi to render")
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when stale")
    args = parser.parse_args(argv)
    stale = []
    for package in args.packages:
        text, path = render(package), stub_path(package)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(package)
        else:
            write_text(path, text)
            print(f"wrote {path}")
    for package in stale:
        print(f"{stub_path(package)} is stale: run `python -m cnnbase.stubs {package}`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(run("python -m cnnbase.stubs", main))
