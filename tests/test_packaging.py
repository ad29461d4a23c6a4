"""The distribution users install: a wheel built from the tree (no network) holds every package of
the Architecture section and its data files, its metadata names every family, and it installs
non-editable in a fresh virtual environment and imports there, away from the checkout."""

from __future__ import annotations

import email.parser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the package itself runs on 3.10

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("LeNet-5", "AlexNet", "VGG", "GoogLeNet", "ResNet", "MobileNetV2", "EfficientNet-B0", "ViT-B/16")


def packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return [p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built from a copy of the files git holds or would add, so the build leaves nothing in the checkout."""
    src = tmp_path_factory.mktemp("src")
    listing = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]  # what a commit of the tree holds
    files = subprocess.run(listing, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    done = subprocess.run([*pip, "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (found,) = out.glob("classic_cnns-*.whl")
    return found


def test_the_wheel_holds_every_package_and_the_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [p for p in packages() if f"{p}/__init__.py" not in names]
    assert missing == [], f"packages without an __init__.py in the wheel: {missing}"
    assert {"cnnspec/data/imagenet1k_categories.txt", "cnnspec/data/imagenet1k_class_index.json"} <= names
    assert "keras_impl/applications/resnet.py" in names
    assert "cnnspec/models/resnet.py" in names and not any(n.startswith(("tests/", "benchmarks/")) for n in names)


def test_the_metadata_names_every_family(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(z.read(meta_name).decode())
    summary = meta["Summary"]
    assert [f for f in FAMILIES if f not in summary] == []
    assert meta.get_all("Classifier") and meta["Keywords"]


def test_the_wheel_installs_and_imports_in_a_fresh_environment(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)]
    done = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    code = (
        "import cnnbase, cnnspec, cnntune, cnnspec.published as p; "
        "print(cnnspec.__version__, len(cnnspec.names()), p.categories()[0], cnnspec.__file__)"
    )
    out = subprocess.run([str(python), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    version, count, first, where = out.stdout.split(maxsplit=3)
    assert version == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert int(count) == 20 and first == "tench" and str(venv) in where  # not the checkout's
