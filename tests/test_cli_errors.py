"""One error discipline for every command line (cnnbase.cli): a bad input is one line and exit 2,
a bug one line and exit 1, --debug shows the traceback, a misspelt model name gets a suggestion."""

from __future__ import annotations

import argparse

import pytest

from cnnbase import cli
from cnnspec import registry


@pytest.mark.parametrize(
    "typed,meant",
    [
        ("resnt18", "resnet18"),
        ("VGG16", "vgg16"),
        ("vgg16-bn", "vgg16_bn"),
        ("googlnet", "googlenet"),
        ("lenet", "lenet5"),
        ("alexnet_orig", "alexnet_original"),
    ],
)
def test_a_misspelt_model_name_suggests_the_closest(typed, meant):
    with pytest.raises(argparse.ArgumentTypeError) as err:
        registry.model_name(typed)
    assert f"unknown model {typed!r}: did you mean {meant!r}?" in str(err.value)
    assert "expected one of: alexnet, " in str(err.value)


def test_no_suggestion_when_nothing_is_close():
    assert cli.closest("transformer", ["resnet18", "vgg16"]) is None
    assert "did you mean" not in cli.unknown_name_message("model", "transformer", ["resnet18"])
    assert registry.model_name("resnet18") == "resnet18"


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
    wrapped = ValueError(
        "Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\nValueError: cannot read image /d/train/a/1.png: truncated'
    )
    assert cli.run("prog", _main(wrapped)) == 2
    assert capsys.readouterr().err == "prog: error: cannot read image /d/train/a/1.png: truncated\n"


def test_a_bug_is_one_line_naming_debug_and_status_1(capsys):
    assert cli.run("prog", _main(ZeroDivisionError("division by zero"))) == 1
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and "internal error: ZeroDivisionError" in err
        and "--debug" in err
        and "Traceback" not in err
    )


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
    from cnntune import cli as finetune_cli

    return {
        "parity": lambda a: parity.__main__.main(["summary", *a]),
        "cnnspec": lambda a: cnnspec.__main__.main(["summary", *a]),
        "torch_impl": lambda a: finetune_cli.main("torch", ["finetune", "--model", *a]),
        "keras_impl": lambda a: finetune_cli.main("keras", ["finetune", "--model", *a]),
    }


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
    assert capsys.readouterr().err.startswith(
        "python -m cnnspec: error: alexnet needs an input of at least 63x63, received 8x8"
    )


# Every start-up line TensorFlow 2.16-2.21 is known to print (its issues #100442, #85604, #66750,
# #62994, and this project's Zen 3 / Zen 4 machines), in both of its log formats.
TENSORFLOW_STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796542920.704829    1918 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different "
    "numerical results due to floating-point round-off errors from different computation orders. To turn them off, set "
    "the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "2024-06-28 00:03:52.491725: I tensorflow/core/util/port.cc:110] oneDNN custom operations are on. You may see ...",
    "I0000 00:00:1796543003.687736    2079 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available "
    "CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "2025-09-17 14:44:05.157831: I external/local_xla/xla/tsl/cuda/cudart_stub.cc:32] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "2025-09-17 14:44:05.176998: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:467] Unable to register "
    "cuFFT "
    "factory: Attempting to register factory for plugin cuFFT when one has already been registered",
    "E0000 00:00:1758131045.203198 3722035 cuda_dnn.cc:8579] Unable to register cuDNN factory: Attempting to register "
    "factory for plugin cuDNN when one has already been registered",
    "E0000 00:00:1758131045.209828 3722035 cuda_blas.cc:1407] Unable to register cuBLAS factory: Attempting to "
    "register "
    "factory for plugin cuBLAS when one has already been registered",
    "W0000 00:00:1758131045.228301 3722035 computation_placer.cc:177] computation placer already registered. Please "
    "check "
    "linkage and avoid linking the same target more than once.",
    "2024-06-28 00:03:53.230172: W tensorflow/compiler/tf2tensorrt/utils/py_utils.cc:38] TF-TRT Warning: Could not "
    "find TensorRT",
    "E0000 00:00:1738726963.601234   17574 cuda_executor.cc:1228] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call "
    "to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1723690765.029742  169903 cuda_executor.cc:1015] successful NUMA node read from SysFS had negative "
    "value (-1), "
    "but there must be at least one NUMA node, so returning NUMA node zero.",
    "I0000 00:00:1738726963.601299   17574 cuda_diagnostics.cc:137] retrieving CUDA diagnostic information for host: "
    "gpu-1",
    "W0000 00:00:1738726963.612345   17574 gpu_device.cc:2344] Cannot dlopen some GPU libraries. Please make sure the "
    "missing libraries mentioned above are installed properly if you would like to use GPU.",
    "Skipping registering GPU devices...",
]
# Lines that must reach the user: a real error while a framework loads is not start-up noise.
NOT_STARTUP = [
    "E0000 00:00:1796542920.704829    1918 op_kernel.cc:1841] OP_REQUIRES failed at save_restore_v2_ops.cc:1: "
    "NOT_FOUND",
    "Traceback (most recent call last):",
    "ImportError: libcudart.so.12: cannot open shared object file: No such file or directory",
    "python -m parity: error: unknown model 'x'",
    "WARNING: the weights file is older than the model",
]


@pytest.mark.parametrize("line", TENSORFLOW_STARTUP)
def test_every_known_tensorflow_startup_line_is_recognised(line):
    from cnnbase import startup_lines

    assert startup_lines.is_startup_line(line)
    assert startup_lines.without_startup_lines(f"{line}\nkept\n") == "kept\n"


@pytest.mark.parametrize("line", NOT_STARTUP)
def test_other_lines_are_never_taken_for_startup_lines(line):
    from cnnbase import startup_lines

    assert not startup_lines.is_startup_line(line)
    assert startup_lines.without_startup_lines(f"{line}\n") == f"{line}\n"


FAKE_TENSORFLOW = """import os
os.write(2, ("\\n".join({lines!r}) + "\\n").encode())
"""


def _run_cli_importing_a_noisy_tensorflow(tmp_path, env_extra, through_a_parent=False):
    """A child process whose ``tensorflow`` is a stand-in printing every known start-up line (and
    one real error) to file descriptor 2 as it loads, the way TensorFlow's libraries do; its main,
    run by cnnbase.cli.run, imports it and fails with a one-line input error."""
    import os
    import subprocess
    import sys

    package = tmp_path / "tensorflow"
    package.mkdir()
    (package / "__init__.py").write_text(FAKE_TENSORFLOW.format(lines=TENSORFLOW_STARTUP + NOT_STARTUP[:1]))
    code = (
        "import sys\nfrom cnnbase import cli\n"
        "def main(argv):\n    import tensorflow\n    raise ValueError('size must be >= 32, received 8')\n"
        "sys.exit(cli.run('prog', main))\n"
    )
    if through_a_parent:  # a CLI that runs that one as its subprocess (as keras_impl runs parity fetch)
        code = (
            "import subprocess, sys\nfrom cnnbase import cli\n"
            f"def main(argv):\n    return subprocess.run([sys.executable, '-c', {code!r}]).returncode\n"
            "sys.exit(cli.run('parent', main))\n"
        )
    env = {k: v for k, v in os.environ.items() if k not in cli.QUIET_ENVIRONMENT}
    env.update(PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]), **env_extra)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)


def test_startup_lines_printed_while_tensorflow_loads_stay_off_stderr(tmp_path):
    done = _run_cli_importing_a_noisy_tensorflow(tmp_path, {})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [NOT_STARTUP[0], "prog: error: size must be >= 32, received 8"]


def test_a_cli_run_by_a_cli_keeps_them_off_stderr_too(tmp_path):
    """The parent's quiet log level is inherited; the child filters its start-up lines too."""
    done = _run_cli_importing_a_noisy_tensorflow(tmp_path, {}, through_a_parent=True)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [NOT_STARTUP[0], "prog: error: size must be >= 32, received 8"]


def test_twin_a_user_who_sets_the_log_level_sees_every_line(tmp_path):
    done = _run_cli_importing_a_noisy_tensorflow(tmp_path, {"TF_CPP_MIN_LOG_LEVEL": "0"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        *TENSORFLOW_STARTUP,
        NOT_STARTUP[0],
        "prog: error: size must be >= 32, received 8",
    ]


# The real frameworks on this machine, whatever its CPU: stderr holds exactly what the command
# means to say (argparse's usage and its one error line; nothing at all on success), so any
# start-up line, known or new, fails these.
@pytest.mark.parametrize(
    "argv,status,stderr",
    [
        (
            ["keras_impl", "finetune", "--epochs", "0"],
            2,
            "python -m keras_impl finetune: error: epochs must be a positive int, received epochs=0",
        ),
        (
            ["keras_impl", "finetune", "--model", "resnt18"],
            2,
            "python -m keras_impl finetune: error: argument --model: unknown model 'resnt18'",
        ),
        (["parity", "check", "lenet5"], 0, None),  # both frameworks and the Keras export child
        (
            ["parity", "check", "lenet5", "--batch", "0"],
            2,
            "python -m parity check: error: --batch must be >= 1 (an empty batch compares nothing), received 0",
        ),
    ],
)
def test_framework_startup_lines_stay_off_stderr(argv, status, stderr):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in cli.QUIET_ENVIRONMENT}
    done = subprocess.run(
        [sys.executable, "-m", *argv],
        capture_output=True,
        text=True,
        env={**env, "CUDA_VISIBLE_DEVICES": ""},
        timeout=300,
    )
    assert done.returncode == status, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    if stderr is None:
        assert lines == []
    else:
        usage = [line for line in lines if line.startswith(("usage: ", " "))]  # argparse's usage, before its error
        assert lines[len(usage) :] == [lines[-1]] and lines[-1].startswith(stderr), lines


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


HUGEPAGE_PROBE = r"""
import os, subprocess, sys
import numpy
from cnnbase import cli

def main(argv):
    child = subprocess.run(
        [sys.executable, "-c", "import numpy; print(numpy._core.multiarray._get_madvise_hugepage())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    print(numpy._core.multiarray._get_madvise_hugepage(), os.environ["NUMPY_MADVISE_HUGEPAGE"], child)
    return 0

sys.exit(cli.run("probe", main, []))
"""


@pytest.mark.parametrize("users_choice", [None, "1"])
def test_numpys_huge_page_advice_is_off_in_a_cli_and_its_children_unless_the_user_chose(users_choice):
    """cnnbase.pages: numpy's madvise(MADV_HUGEPAGE) made first touches of large arrays stall on
    compaction; every CLI turns it off, for numpy already imported and for the processes it starts.
    The twin: a user's own NUMPY_MADVISE_HUGEPAGE=1 stays."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if users_choice:
        env["NUMPY_MADVISE_HUGEPAGE"] = users_choice
    out = subprocess.run([sys.executable, "-c", HUGEPAGE_PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == (["True", "1", "True"] if users_choice else ["False", "0", "False"])
