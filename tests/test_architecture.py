"""The house's rules, read from the code: imports point down the layers of the README's
Architecture section, no two modules import each other (directly or round a circle), and an
``__init__`` only imports, defines and registers.

The graph is read with :mod:`ast` from the installed packages' files (every ``import`` counts,
the ones inside functions too: a lazy import is still an arrow), so the test needs no framework.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# layer of each top-level package, lowest first; a module may import its own package and any lower
# layer. Packages on one layer do not import each other (torch_impl never sees keras_impl).
LAYERS: dict[str, int] = {
    "cnnbase": 0,
    "cnnspec": 1,
    "cnntoydata": 2,
    "cnntune": 3,
    "torch_impl": 4,
    "keras_impl": 4,
    "parity": 5,
    "benchmarks": 6,
}
FOLDERS = ("benchmarks",)  # not installed: read from the checkout
# the one side effect an import may have: registering specs (each family file's @register)
REGISTERS = {
    "cnnspec.models": "imports every family file of the folder, so a new model is one file"
}  # not installed: read from the checkout

Graph = dict[str, set[str]]


def package_files(package: str) -> dict[str, Path]:
    """module name -> file, for an installed package (or a folder of the checkout)."""
    if package in FOLDERS:
        base = ROOT / package
    else:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, f"{package} is not installed"
        base = Path(next(iter(spec.submodule_search_locations)))
    files = {}
    for path in sorted(base.rglob("*.py")):
        parts = (package, *path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The project's modules that ``module`` imports, resolved to the deepest known module name."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for alias in node.names:  # ``from pkg import module`` is an arrow to the module, not to pkg
                names.add(f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem)
    found = set()
    for name in names:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


def import_graph(packages: Iterable[str] = LAYERS) -> Graph:
    files: dict[str, Path] = {}
    for package in packages:
        files.update(package_files(package))
    return {module: imported_modules(module, path, set(files)) for module, path in files.items()}


def upward_arrows(graph: Graph, layers: dict[str, int] = LAYERS) -> list[str]:
    bad = []
    for module, targets in sorted(graph.items()):
        here = module.split(".")[0]
        for target in sorted(targets):
            there = target.split(".")[0]
            if there != here and (layers[there] > layers[here] or layers[there] == layers[here]):
                bad.append(f"{module} -> {target} (layer {layers[here]} imports layer {layers[there]})")
    return bad


def circles(graph: Graph) -> list[list[str]]:
    """Every strongly connected set of two or more modules (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def init_side_effects(package: str) -> list[str]:
    """Statements of an ``__init__`` beyond imports, definitions, ``__all__`` and its docstring."""
    allowed = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    bad = []
    for module, path in package_files(package).items():
        if path.name != "__init__.py":
            continue
        for stmt in ast.parse(path.read_text()).body:
            if isinstance(stmt, allowed):
                continue
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):  # docstring
                continue
            if isinstance(stmt, ast.Assign | ast.AnnAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if names and all(n.startswith("__") and n.endswith("__") for n in names):  # __all__, __version__
                    continue
                plain = len(names) == len(targets) and stmt.value is not None
                if plain and not any(isinstance(x, ast.Call) for x in ast.walk(stmt.value)):
                    continue  # a constant table
            if module in REGISTERS:
                continue
            bad.append(f"{module} line {stmt.lineno}: {ast.unparse(stmt).splitlines()[0]}")
    return bad


@pytest.fixture(scope="module")
def graph() -> Graph:
    return import_graph()


def test_imports_point_down(graph: Graph) -> None:
    assert upward_arrows(graph) == []


def test_no_module_imports_round_a_circle(graph: Graph) -> None:
    assert circles(graph) == []


@pytest.mark.parametrize("package", [p for p in LAYERS if p not in FOLDERS])
def test_init_files_only_import_and_define(package: str) -> None:
    assert init_side_effects(package) == []


def test_every_top_level_package_has_a_layer() -> None:
    """A new top-level package must be placed in the layers before it can be imported."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    included = config["tool"]["setuptools"]["packages"]["find"]["include"]
    assert sorted(p.rstrip("*") for p in included) == sorted(p for p in LAYERS if p not in FOLDERS)


# the twins: the checks find what they are for


def test_an_added_upward_import_is_found(graph: Graph) -> None:
    broken = {k: set(v) for k, v in graph.items()}
    broken["cnnspec.registry"].add("torch_impl.models")
    added = set(upward_arrows(broken)) - set(upward_arrows(graph))
    assert added == {"cnnspec.registry -> torch_impl.models (layer 1 imports layer 4)"}


def test_a_sideways_import_between_frameworks_is_found(graph: Graph) -> None:
    broken = {k: set(v) for k, v in graph.items()}
    broken["torch_impl.models"].add("keras_impl.models")
    added = set(upward_arrows(broken)) - set(upward_arrows(graph))
    assert added == {"torch_impl.models -> keras_impl.models (layer 4 imports layer 4)"}


def test_an_added_circle_is_found(graph: Graph) -> None:
    broken = {k: set(v) for k, v in graph.items()}
    broken["cnnspec.nodes"].add("cnnspec.registry")  # registry -> model -> nodes -> registry
    assert any({"cnnspec.nodes", "cnnspec.registry"} <= set(group) for group in circles(broken))


def test_the_reader_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("from . import b\nfrom .c import thing\ndef f():\n    import pkg.d.e\n")
    known = {"pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d"}
    assert imported_modules("pkg.a", source, known) == {"pkg.b", "pkg.c", "pkg.d"}


def test_a_side_effect_in_an_init_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sidefx").mkdir()
    (tmp_path / "sidefx" / "__init__.py").write_text('"""doc"""\nimport os\n__all__ = []\nos.environ["X"] = "1"\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    assert init_side_effects("sidefx") == ["sidefx line 4: os.environ['X'] = '1'"]
