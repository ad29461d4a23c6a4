"""One error discipline for every command line (cnnspec.cli): a bad input is one line and exit 2,
a bug one line and exit 1, --debug shows the traceback, a misspelt model name gets a suggestion."""
from __future__ import annotations

import argparse

import pytest

from cnnspec import cli


@pytest.mark.parametrize("typed,meant", [("resnt18", "resnet18"), ("VGG16", "vgg16"), ("vgg16-bn", "vgg16_bn"),
                                         ("googlnet", "googlenet"), ("lenet", "lenet5"), ("alexnet_orig", "alexnet_original")])
def test_a_misspelt_model_name_suggests_the_closest(typed, meant):
    with pytest.raises(argparse.ArgumentTypeError) as err:
        cli.model_name(typed)
    assert f"unknown model {typed!r}: did you mean {meant!r}?" in str(err.value)
    assert "expected one of: alexnet, " in str(err.value)


def test_no_suggestion_when_nothing_is_close():
    assert cli.closest("transformer", ["resnet18", "vgg16"]) is None
    assert "did you mean" not in cli.unknown_name_message("model", "transformer", ["resnet18"])
    assert cli.model_name("resnet18") == "resnet18"


def _main(exc):
    def main(argv):
        raise exc
    return main


def test_an_input_error_is_one_line_and_status_2(capsys):
    assert cli.run("prog", _main(ValueError("size must be >= 32, received 8\nmore detail"))) == 2
    err = capsys.readouterr().err
    assert err == "prog: error: size must be >= 32, received 8\n"


def test_a_key_error_reads_without_quotes(capsys):
    assert cli.run("prog", _main(KeyError("unknown weights 'V9'"))) == 2
    assert capsys.readouterr().err == "prog: error: unknown weights 'V9'\n"


def test_a_dataloader_worker_error_shows_the_original_line(capsys):
    wrapped = ValueError("Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
                         "  File \"x.py\", line 1, in f\nValueError: cannot read image /d/train/a/1.png: truncated")
    assert cli.run("prog", _main(wrapped)) == 2
    assert capsys.readouterr().err == "prog: error: cannot read image /d/train/a/1.png: truncated\n"


def test_a_bug_is_one_line_naming_debug_and_status_1(capsys):
    assert cli.run("prog", _main(ZeroDivisionError("division by zero"))) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error: ZeroDivisionError" in err and "--debug" in err and "Traceback" not in err


def test_debug_shows_the_traceback_and_is_not_passed_on():
    seen = []

    def main(argv):
        seen.append(argv)
        raise ValueError("bad")

    with pytest.raises(ValueError):
        cli.run("prog", main, ["check", "--debug", "alexnet"])
    assert seen == [["check", "alexnet"]]


def test_framework_logs_are_quieted_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv("GRPC_VERBOSITY", "DEBUG")
    cli.quiet_framework_logs()
    import os
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3" and os.environ["GRPC_VERBOSITY"] == "DEBUG"


def _cli_mains():
    import cnnspec.__main__
    import parity.__main__
    import toydata.__main__
    from finetuning import cli as finetune_cli

    return {"parity": lambda a: parity.__main__.main(["summary", *a]), "cnnspec": lambda a: cnnspec.__main__.main(["summary", *a]),
            "torch_impl": lambda a: finetune_cli.main("torch", ["finetune", "--model", *a]),
            "keras_impl": lambda a: finetune_cli.main("keras", ["finetune", "--model", *a])}


@pytest.mark.parametrize("entry", ["parity", "cnnspec", "torch_impl", "keras_impl"])
def test_every_cli_suggests_the_model_meant(entry, capsys):
    with pytest.raises(SystemExit) as done:
        _cli_mains()[entry](["resnt50"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "unknown model 'resnt50': did you mean 'resnet50'?" in err and "Traceback" not in err


def test_too_small_an_input_names_the_minimum(capsys):
    import cnnspec.__main__

    assert cnnspec.__main__.main(["summary", "alexnet", "--size", "8"]) == 2
    assert capsys.readouterr().err.startswith("python -m cnnspec: error: alexnet needs an input of at least 63x63, received 8x8")


NOISE = ("0000 ", "absl::InitializeLog", "cpu_feature_guard", "cuInit", "oneDNN custom operations")


@pytest.mark.parametrize("argv,status", [(["keras_impl", "finetune", "--model", "resnt18"], 2),
                                         (["parity", "check", "lenet5", "--no-onnx"], 0),
                                         (["parity", "check", "lenet5", "--batch", "0"], 2)])
def test_framework_startup_lines_stay_off_stderr(argv, status):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in cli.QUIET_ENVIRONMENT}
    done = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, env={**env, "CUDA_VISIBLE_DEVICES": ""}, timeout=300)
    assert done.returncode == status, done.stderr[-2000:]
    noise = [line for line in done.stderr.splitlines() if any(mark in line for mark in NOISE)]
    assert not noise, noise
    if status == 2:
        assert done.stderr.strip().splitlines()[-1].startswith(f"python -m {argv[0]}")
        assert "Traceback" not in done.stderr


def test_the_api_suggests_the_model_meant_too():
    import cnnspec

    for error in (KeyError, ValueError):  # both: a failed lookup and a bad argument
        with pytest.raises(error, match="unknown model 'resnt18': did you mean 'resnet18'"):
            cnnspec.get("resnt18")


def test_a_dtype_mismatch_is_one_clear_error():
    import torch

    import torch_impl

    model = torch_impl.lenet5().eval()
    with pytest.raises(TypeError, match=r"lenet5 has torch.float32 weights and received a torch.float16 input"):
        model(torch.zeros(1, 1, 32, 32, dtype=torch.float16))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast mixes dtypes on purpose
        assert model(torch.zeros(1, 1, 32, 32)).dtype == torch.bfloat16
