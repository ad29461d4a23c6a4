"""One scenario both fine-tune CLIs must pass: a real divergence (no patched loss) stops the run
with one line and keeps the folder of the last good epoch (test_transfer_torch/keras call it)."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def check_divergence_keeps_the_good_run(
    framework: str, cli_main: Callable[[list[str]], int], data: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """One good epoch, then the run resumed at --lr 1e38. LeNet-5's tanh bounds every activation,
    so only the last layer's weights can overflow float32: an Adam step of 1e38 makes its logits
    +-inf and the loss nan on the next step. The run stops with one line (status 2) and its folder
    stays byte for byte as the good epoch left it; the twin: the same resume without the loop's
    finite-loss check writes the diverged epoch over it."""
    common = [
        "finetune",
        "--data",
        str(data),
        "--model",
        "lenet5",
        "--mode",
        "fine-tune",
        "--batch-size",
        "8",
        "--no-progress",
    ]
    assert cli_main([*common, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    good = _files(tmp_path / "run")
    assert json.loads(good["last.json"])["epoch"] == 1
    shutil.copytree(tmp_path / "run", tmp_path / "unguarded")
    capsys.readouterr()
    diverge = [*common, "--epochs", "2", "--lr", "1e38"]
    assert cli_main([*diverge, "--resume", str(tmp_path / "run")]) == 2
    assert re.fullmatch(
        rf"python -m {framework}_impl finetune: error: training diverged in epoch 2: the train loss is (nan|inf); "
        r"a lower --lr \(this run's peak: 1e\+38\) usually helps\n",
        capsys.readouterr().err,
    )
    assert _files(tmp_path / "run") == good  # weights, optimizer state, history.json and curves.png of epoch 1
    import cnntune.loop

    monkeypatch.setattr(cnntune.loop, "math", SimpleNamespace(isfinite=lambda x: True))
    assert cli_main([*diverge, "--resume", str(tmp_path / "unguarded")]) == 0
    assert _files(tmp_path / "unguarded") != good
    assert not math.isfinite(
        json.loads((tmp_path / "unguarded" / "last.json").read_text())["history"][-1]["train_loss"]
    )
