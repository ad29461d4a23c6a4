"""What IDEs and type checkers see: the factories that torch_impl and keras_impl make at run time
(one per registered model) are declared in each package's generated ``__init__.pyi``, which must
equal what the live package exports, and mypy checks typical user code against them. The twin, one
misspelt keyword, must fail the check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cnnbase import stubs

ROOT = Path(__file__).resolve().parents[1]
TYPED = ["torch_impl", "keras_impl"]


@pytest.mark.parametrize("package", TYPED)
def test_the_stub_is_the_live_package(package):
    assert stubs.stub_path(package).read_text() == stubs.render(package), (
        f"{package}/__init__.pyi is stale: run `python -m cnnbase.stubs {package}`"
    )


@pytest.mark.parametrize("package", [*TYPED, "cnnspec", "cnnbase"])
def test_the_package_says_it_is_typed(package):
    assert (ROOT / package / "py.typed").is_file()


def test_every_factory_is_declared_with_its_options():
    torch_stub, keras_stub = (stubs.stub_path(p).read_text() for p in TYPED)
    import cnnspec
    from keras_impl.naming import constructor_name

    for name in cnnspec.names():
        for option in cnnspec.options(name):
            assert f"    {option}: " in torch_stub.split(f"def {name}(")[1].split("def ")[0], (name, option)
        assert f"def {constructor_name(name)}(" in keras_stub and f"def {name}(" in keras_stub


def mypy(path: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("mypy")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--config-file", str(ROOT / "pyproject.toml"), str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_user_code_type_checks():
    result = mypy(ROOT / "tests" / "typing" / "user_code.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_misspelt_keyword_fails_the_check():
    """The twin: ``vgg16(num_clases=10)`` is an error the checker reports, not a silent ``**kwargs``."""
    result = mypy(ROOT / "tests" / "typing" / "misspelt_keyword.py")
    assert result.returncode == 1, result.stdout
    assert 'Unexpected keyword argument "num_clases" for overloaded function "vgg16"' in result.stdout
    assert 'did you mean "num_classes"?' in result.stdout
    assert 'Unexpected keyword argument "weight" for "VGG16"' in result.stdout
