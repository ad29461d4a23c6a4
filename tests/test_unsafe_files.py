"""A torch checkpoint is data, never code: a pickle whose unpickling would create a file is refused
by every entry point that reads one, with one clear line, and the file is never created."""

from __future__ import annotations

import pickle

import pytest
import torch

import torch_impl
from torch_impl.weights import read_state_dict


class _CreatesAFile:
    """Unpickling this calls open(path, "w"): a file appears if the loader runs pickled code."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def booby_trapped(tmp_path):
    marker = tmp_path / "created-by-unpickling"
    checkpoint = tmp_path / "resnet18.pth"
    with open(checkpoint, "wb") as f:
        pickle.dump({"fc.weight": _CreatesAFile(marker), "fc.bias": torch.zeros(1000)}, f)
    # the trap is real: plain unpickling creates the file
    with open(checkpoint, "rb") as f:
        pickle.load(f).get("fc.weight").close()
    assert marker.exists()
    marker.unlink()
    return checkpoint, marker


@pytest.mark.parametrize("entry", ["read_state_dict", "factory", "convert", "cli"])
def test_a_pickle_that_creates_a_file_is_refused_and_nothing_is_created(booby_trapped, tmp_path, entry, capsys):
    checkpoint, marker = booby_trapped
    if entry == "cli":
        from parity.__main__ import main

        assert main(["convert", "--model", "resnet18", str(checkpoint), str(tmp_path / "out.weights.h5")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "weights_only=True" in err
    else:
        with pytest.raises(ValueError, match="weights_only=True"):
            if entry == "read_state_dict":
                read_state_dict(checkpoint)
            elif entry == "factory":
                torch_impl.resnet18(weights=checkpoint)
            else:
                from parity.weights.convert import convert

                convert("resnet18", checkpoint, tmp_path / "out.weights.h5")
    assert not marker.exists()
    assert not (tmp_path / "out.weights.h5").exists()
