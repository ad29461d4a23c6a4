"""Bad inputs, tried as a new user would, each with the one line it must get (docs/robustness.md is
this table with the messages as shown). A CLI case passes when it exits 2 (or the status given)
and its stderr is that one line, ``PROG: error: ...`` containing ``match``, and nothing else
(argparse's errors: after argparse's usage block, nothing else either: no framework start-up line,
no warning, no traceback); an API case when it raises the given exception type with ``match`` in
its message. Each ``match`` names what was expected and what was received.

    python tests/test_robustness.py      # rewrites docs/robustness.md from these cases
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from image_folders import write_colours

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "robustness.md"
WS = "WS"  # the workspace folder, as the table shows it


@dataclass(frozen=True)
class Case:
    id: str
    entry: str  # "parity", "cnnspec", "cnntoydata", "torch_impl finetune", "keras_impl finetune", or "api: <what>"
    given: Sequence[str] | Callable  # argv (WS is replaced by the workspace) or a callable taking the workspace
    expect: str  # "2" (exit status) or an exception type's name
    match: str
    what: str = ""  # the bad input in words, for the table


def _a(*argv: str) -> list[str]:
    return list(argv)


# --------------------------------------------------------------------------------------------- api
def _torch_forward(x):
    import torch_impl

    return torch_impl.resnet18().eval()(x)


def _torch(*shape, dtype="float32"):
    import torch

    return torch.zeros(*shape, dtype=getattr(torch, dtype))


def _compare(x):
    import keras_impl
    import parity
    import torch_impl

    return parity.compare(torch_impl.lenet5(), keras_impl.lenet5(classifier_activation=None), x)


def _transfer(a: str, b: str):
    import keras_impl
    import parity
    import torch_impl

    return parity.transfer_weights(
        torch_impl.get_model(a),
        keras_impl.get_model(b, classifier_activation=None) if b != "torch" else torch_impl.get_model(a),
    )


CASES: list[Case] = [
    # ------------------------------------------------------------------ python -m parity
    Case("P01", "parity", _a("check", "resnt18"), "2", "did you mean 'resnet18'?", "misspelt model name"),
    Case("P02", "parity", _a("check", "VGG16"), "2", "did you mean 'vgg16'?", "model name in capitals"),
    Case("P03", "parity", _a("check"), "2", "name a model or pass --all", "no model named"),
    Case(
        "P04",
        "parity",
        _a("check", "resnet18", "--batch", "0"),
        "2",
        "--batch must be >= 1 (an empty batch compares nothing), received 0",
        "empty batch",
    ),
    Case(
        "P05",
        "parity",
        _a("check", "resnet18", "--batch", "-3"),
        "2",
        "--batch must be >= 1 (an empty batch compares nothing), received -3",
        "negative batch",
    ),
    Case(
        "P06",
        "parity",
        _a("check", "alexnet", "--size", "8", "--no-onnx"),
        "2",
        "alexnet needs an input of at least 63x63, received 8x8",
        "input too small",
    ),
    Case(
        "P07",
        "parity",
        _a("check", "lenet5", "--size", "64", "--no-onnx"),
        "2",
        "only takes 32x32 inputs, received 64x64",
        "other size for a fixed-size model",
    ),
    Case(
        "P08",
        "parity",
        _a("check", "resnet18", "--size", "3", "4", "5"),
        "2",
        "--size takes HEIGHT [WIDTH], received 3 values: 3 4 5",
        "three sizes",
    ),
    Case(
        "P09",
        "parity",
        _a("check", "resnet18", "--size", "0", "--no-onnx"),
        "2",
        "expected an input of (channels, height, width) >= 1, received (3, 0, 0)",
        "size 0",
    ),
    Case(
        "P10",
        "parity",
        _a("check", "lenet5", "--train", "--steps", "0"),
        "2",
        "steps must be >= 1, received 0",
        "zero training steps",
    ),
    Case(
        "P11",
        "parity",
        _a("check", "resnet18", "--train", "--weights", "WS/r18.pth"),
        "2",
        "--train starts from seeded random weights",
        "contradicting flags",
    ),
    Case(
        "P12",
        "parity",
        _a("check", "resnet18", "--weights", "WS/missing.pth", "--no-onnx"),
        "2",
        "weights file not found: WS/missing.pth",
        "weights file that does not exist",
    ),
    Case(
        "P13",
        "parity",
        _a("check", "resnet18", "--weights", "WS/truncated.pth", "--no-onnx"),
        "2",
        "is not a torch checkpoint that loads with weights_only=True",
        "truncated checkpoint",
    ),
    Case(
        "P14",
        "parity",
        _a("check", "resnet34", "--weights", "WS/r18.pth", "--no-onnx"),
        "2",
        "weights do not fit resnet34: 96 missing keys",
        "checkpoint of another model",
    ),
    Case(
        "P15",
        "parity",
        _a("check", "resnet18", "--weights", "IMAGENET1K_V9", "--no-onnx"),
        "2",
        "resnet18 has no published weights named 'IMAGENET1K_V9'",
        "unknown published weights",
    ),
    Case(
        "P16",
        "parity",
        _a("check", "lenet5", "--keras-backend", "jax", "--all-backends"),
        "2",
        "pass --keras-backend NAME or --all-backends, not both",
        "two backend flags at once",
    ),
    Case(
        "P17",
        "parity",
        _a("check", "lenet5", "--no-onnx", "--json", "/proc/no/such/out.json"),
        "2",
        "cannot write /proc/no/such/out.json",
        "JSON into a folder that cannot exist",
    ),
    Case(
        "P18",
        "parity",
        _a("convert", "--model", "resnet18", "WS/missing.pth", "WS/out.weights.h5"),
        "2",
        "source file not found: WS/missing.pth",
        "missing source",
    ),
    Case(
        "P19",
        "parity",
        _a("convert", "--model", "resnet18", "WS/garbage.pth", "WS/out.weights.h5"),
        "2",
        "WS/garbage.pth is not a torch checkpoint that loads with weights_only=True",
        "a text file named .pth",
    ),
    Case(
        "P20",
        "parity",
        _a("convert", "--model", "resnet18", "WS/empty.pth", "WS/out.weights.h5"),
        "2",
        "WS/empty.pth is not a torch checkpoint that loads with weights_only=True: the file is empty",
        "an empty .pth",
    ),
    Case(
        "P21",
        "parity",
        _a("convert", "--model", "resnet18", "WS/r18.pth", "WS/out.onnx"),
        "2",
        "cannot convert 'r18.pth' -> 'out.onnx': expected a torch checkpoint",
        "unknown target format",
    ),
    Case(
        "P22",
        "parity",
        _a("convert", "--model", "resnet18", "WS/garbage.weights.h5", "WS/out.pth"),
        "2",
        "WS/garbage.weights.h5 is not a Keras weights file",
        "corrupt Keras weights file",
    ),
    Case(
        "P23",
        "parity",
        _a("convert", "--model", "resnet34", "WS/r18.pth", "WS/out.weights.h5"),
        "2",
        "weights do not fit resnet34: 96 missing keys",
        "checkpoint of another model",
    ),
    Case(
        "P24",
        "parity",
        _a("convert", "--model", "resnet18", "WS/folder.pth", "WS/out.weights.h5"),
        "2",
        "is a folder; expected a weights file",
        "a folder named like a checkpoint",
    ),
    Case(
        "P25",
        "parity",
        _a("export", "resnet18", "--framework", "tf", "--out", "WS/x.onnx"),
        "2",
        "invalid choice: 'tf'",
        "unknown framework",
    ),
    Case(
        "P26",
        "parity",
        _a("export", "resnet18", "--framework", "torch", "--out", "WS/x.onnx", "--weights", "WS/truncated.pth"),
        "2",
        "WS/truncated.pth is not a torch checkpoint that loads with weights_only=True",
        "export from a truncated checkpoint",
    ),
    Case("P27", "parity", _a("fetch", "resnt18"), "2", "did you mean 'resnet18'?", "misspelt model to fetch"),
    Case(
        "P28",
        "parity",
        _a("fetch", "resnet18", "--weights", "V9"),
        "2",
        "resnet18 has no published weights named 'V9'",
        "unknown weights to fetch",
    ),
    Case(
        "P30",
        "parity",
        _a("check", "lenet5", "--no-onnx", "--json", "WS/folder.pth"),
        "2",
        "cannot write WS/folder.pth: it is a folder",
        "JSON onto a folder",
    ),
    Case(
        "P31",
        "parity",
        _a("check", "lenet5", "--no-onnx", "--json", "WS/notes.txt/out.json"),
        "2",
        "notes.txt is a file, not a folder",
        "JSON under a file",
    ),
    Case(
        "P32",
        "parity",
        _a("check", "lenet5", "--no-onnx", "--plot", "WS/plot.txt"),
        "2",
        "expected a file name ending in .png",
        "a plot that is not a PNG",
    ),
    Case(
        "P33", "parity", _a("check", "lenet5", "--rtol", "-1"), "2", "must be >= 0, received -1.0", "negative tolerance"
    ),
    Case(
        "P34",
        "parity",
        _a("export", "resnet18", "--framework", "torch", "--out", "WS/model.txt"),
        "2",
        "expected a file name ending in .onnx",
        "export to a non-ONNX name",
    ),
    Case("P35", "parity", _a("train-curve", "lenet5", "--size", "0"), "2", "size must be >= 1", "curve at size 0"),
    Case(
        "P36",
        "parity",
        _a("convert", "--model", "resnet18", "WS/r18.pth", "WS/out.weights.h5", "--num-classes", "5"),
        "2",
        "has 1000 classes, --num-classes says 5",
        "num_classes contradicting the checkpoint",
    ),
    Case(
        "P37",
        "parity",
        _a("convert", "--model", "resnet18", "WS/r18.pth", "WS/out.weights.h5", "--num-classes", "0"),
        "2",
        "num_classes must be a positive int",
        "zero classes",
    ),
    Case(
        "P29",
        "parity",
        _a("fetch", "lenet5"),
        "2",
        "lenet5 has no published weights",
        "a model without published weights",
    ),
    # ------------------------------------------------------------------ python -m cnnspec
    Case(
        "S01",
        "cnnspec",
        _a("summary", "vgg17"),
        "2",
        "unknown model 'vgg17': did you mean 'vgg19'? (expected one of: alexnet, ",
        "unknown model",
    ),
    Case(
        "S02",
        "cnnspec",
        _a("summary", "alexnet", "--size", "8"),
        "2",
        "alexnet needs an input of at least 63x63, received 8x8",
        "input too small",
    ),
    Case(
        "S03",
        "cnnspec",
        _a("summary", "resnet18", "--num-classes", "0"),
        "2",
        "num_classes must be a positive int, received num_classes=0",
        "zero classes",
    ),
    Case(
        "S04",
        "cnnspec",
        _a("summary", "resnet18", "--size", "1", "2", "3"),
        "2",
        "--size takes one or two numbers",
        "three sizes",
    ),
    # ------------------------------------------------------------------ python -m cnntoydata
    Case(
        "T01",
        "cnntoydata",
        _a("WS/toy", "--size", "0"),
        "2",
        "size must be a positive int, received size=0",
        "image size 0",
    ),
    Case(
        "T02",
        "cnntoydata",
        _a("WS/toy", "--train", "-1"),
        "2",
        "train_per_class must be a positive int, received train_per_class=-1",
        "negative image count",
    ),
    Case(
        "T03",
        "cnntoydata",
        _a("WS/notes.txt"),
        "2",
        "WS/notes.txt exists and does not hold this cnntoydata dataset",
        "a file where the folder should go",
    ),
    Case(
        "T05", "cnntoydata", _a("WS/toy", "--noise", "-3"), "2", "noise must be a finite number >= 0", "negative noise"
    ),
    Case(
        "T04",
        "cnntoydata",
        _a("WS/toy", "--classes", "pentagon"),
        "2",
        "invalid choice: 'pentagon'",
        "unknown shape class",
    ),
    # ------------------------------------------------------------------ python -m torch_impl finetune
    Case(
        "F01",
        "torch_impl finetune",
        _a("--data", "WS/missing"),
        "2",
        "data folder WS/missing does not exist; expected an image folder",
        "data folder that does not exist",
    ),
    Case("F02", "torch_impl finetune", _a("--data", "WS/no_train"), "2", "has no train/ subfolder", "no train/ folder"),
    Case(
        "F03",
        "torch_impl finetune",
        _a("--data", "WS/mismatch"),
        "2",
        "only in train/: ['blue']",
        "a class in train/ but not in val/",
    ),
    Case(
        "F04",
        "torch_impl finetune",
        _a("--data", "WS/empty_class"),
        "2",
        "class folders without images in WS/empty_class/train: ['green']",
        "an empty class folder",
    ),
    Case(
        "F05",
        "torch_impl finetune",
        _a("--data", "WS/unreadable_class"),
        "2",
        "class folder WS/unreadable_class/val/green has no readable image (unreadable: ['0.png'])",
        "a class whose every file is unreadable",
    ),
    Case(
        "F16",
        "torch_impl finetune",
        _a("--data", "WS/one_class"),
        "2",
        "has one class ('red'): a classifier needs two or more",
        "a single class",
    ),
    Case(
        "F17",
        "torch_impl finetune",
        _a("--data", "WS/notes.txt"),
        "2",
        "is a file, not a folder",
        "a file as the data folder",
    ),
    Case(
        "F18",
        "torch_impl finetune",
        _a("--lr", "inf"),
        "2",
        "lr must be a finite number > 0, received lr=inf",
        "infinite learning rate",
    ),
    Case("F06", "torch_impl finetune", _a("--model", "resnt18"), "2", "did you mean 'resnet18'?", "misspelt model"),
    Case(
        "F07",
        "torch_impl finetune",
        _a("--epochs", "0"),
        "2",
        "epochs must be a positive int, received epochs=0",
        "zero epochs",
    ),
    Case(
        "F08",
        "torch_impl finetune",
        _a("--batch-size", "0"),
        "2",
        "batch_size must be a positive int",
        "zero batch size",
    ),
    Case(
        "F09",
        "torch_impl finetune",
        _a("--lr", "-1"),
        "2",
        "lr must be a finite number > 0, received lr=-1.0",
        "negative learning rate",
    ),
    Case(
        "F10",
        "torch_impl finetune",
        _a("--data", "WS/ok", "--weights", "WS/missing.pth"),
        "2",
        "weights file not found: WS/missing.pth",
        "weights file that does not exist",
    ),
    Case(
        "F11",
        "torch_impl finetune",
        _a("--data", "WS/ok", "--weights", "WS/garbage.pth"),
        "2",
        "WS/garbage.pth is not a torch checkpoint that loads with weights_only=True",
        "a text file as weights",
    ),
    Case(
        "F12",
        "torch_impl finetune",
        _a("--data", "WS/ok", "--weights", "IMAGENET1K_V9"),
        "2",
        "no published weights named 'IMAGENET1K_V9'",
        "unknown published weights",
    ),
    Case(
        "F13",
        "torch_impl finetune",
        _a("--data", "WS/ok", "--model", "lenet5", "--size", "64"),
        "2",
        "lenet5 takes only 32x32 inputs",
        "other size for a fixed-size model",
    ),
    Case(
        "F14",
        "torch_impl finetune",
        _a("--data", "WS/ok", "--resume", "WS/missing-run"),
        "2",
        "no checkpoint at WS/missing-run: expected a run folder holding last.json",
        "resume from nothing",
    ),
    Case(
        "F15",
        "torch_impl finetune",
        _a("--data", "WS/ok", "--device", "tpu"),
        "2",
        "device must be one of ('auto', 'cpu', 'cuda', 'mps') or cuda:N, received device='tpu'",
        "unknown device",
    ),
    # ------------------------------------------------------------------ python -m keras_impl finetune
    Case(
        "K01",
        "keras_impl finetune",
        _a("--data", "WS/missing"),
        "2",
        "data folder WS/missing does not exist; expected an image folder",
        "data folder that does not exist",
    ),
    Case(
        "K02",
        "keras_impl finetune",
        _a("--data", "WS/ok", "--weights", "WS/r18.pth"),
        "2",
        "python -m parity convert --model resnet18",
        "a torch checkpoint given to Keras",
    ),
    Case(
        "K03",
        "keras_impl finetune",
        _a("--data", "WS/ok", "--weights", "WS/garbage.weights.h5"),
        "2",
        "garbage.weights.h5 is not a readable Keras .weights.h5 file",
        "corrupt Keras weights file",
    ),
    Case("K04", "keras_impl finetune", _a("--model", "VGG16"), "2", "did you mean 'vgg16'?", "model name in capitals"),
    # ------------------------------------------------------------------ Python API
    Case(
        "A01",
        "api: cnnspec.get",
        lambda ws: __import__("cnnspec").get("resnt18"),
        "UnknownModelError",
        "did you mean 'resnet18'?",
        "misspelt model name",
    ),
    Case(
        "A02",
        "api: torch_impl.resnet18",
        lambda ws: __import__("torch_impl").resnet18(num_classes=0),
        "ValueError",
        "num_classes must be a positive int",
        "zero classes",
    ),
    Case(
        "A03",
        "api: torch_impl.resnet34",
        lambda ws: __import__("torch_impl").resnet34(weights=ws / "r18.pth"),
        "ValueError",
        "weights do not fit resnet34: 96 missing keys",
        "checkpoint of another model",
    ),
    Case(
        "A04",
        "api: torch_impl.resnet18",
        lambda ws: __import__("torch_impl").resnet18(weights=ws / "r18_10.pth"),
        "ValueError",
        "the checkpoint has 10 classes: build with num_classes=10",
        "num_classes differs from the checkpoint's",
    ),
    Case(
        "A05",
        "api: torch_impl.resnet18",
        lambda ws: __import__("torch_impl").resnet18(weights=ws / "truncated.pth"),
        "ValueError",
        "WS/truncated.pth is not a torch checkpoint that loads with weights_only=True",
        "truncated checkpoint",
    ),
    Case(
        "A06",
        "api: torch_impl.resnet18",
        lambda ws: __import__("torch_impl").resnet18(weights=ws / "empty.safetensors"),
        "ValueError",
        "WS/empty.safetensors is not a readable safetensors file",
        "empty safetensors file",
    ),
    Case(
        "A07",
        "api: torch_impl.resnet18",
        lambda ws: __import__("torch_impl").resnet18(dropout=0.5),
        "TypeError",
        "resnet18 does not accept ['dropout']",
        "an option the model does not have",
    ),
    Case(
        "A08",
        "api: model(x)",
        lambda ws: _torch_forward(_torch(2, 1, 64, 64)),
        "ValueError",
        "resnet18 expects input of shape (N, 3, H, W), received (2, 1, 64, 64)",
        "wrong channels",
    ),
    Case(
        "A09",
        "api: model(x)",
        lambda ws: _torch_forward(_torch(3, 64, 64)),
        "ValueError",
        "resnet18 expects input of shape (N, 3, H, W), received (3, 64, 64)",
        "wrong rank (no batch axis)",
    ),
    Case(
        "A10",
        "api: model(x)",
        lambda ws: _torch_forward(_torch(1, 3, 64, 64, dtype="int64")),
        "TypeError",
        "expects a floating-point input, received dtype torch.int64",
        "integer input",
    ),
    Case(
        "A11",
        "api: model(x)",
        lambda ws: _torch_forward(_torch(1, 3, 64, 64, dtype="float16")),
        "TypeError",
        "has torch.float32 weights and received a torch.float16 input",
        "input dtype differs from the weights'",
    ),
    Case(
        "A12",
        "api: model(x)",
        lambda ws: _torch_forward(np.zeros((1, 3, 64, 64), np.float32)),
        "TypeError",
        "expects a torch.Tensor of shape (N, 3, H, W), received ndarray",
        "a numpy array",
    ),
    Case(
        "A13",
        "api: keras_impl.resnet18",
        lambda ws: __import__("keras_impl").resnet18(input_shape=(224, 224, 1)),
        "ValueError",
        "resnet18 expects 3 input channels (channels last). Received: input_shape=(224, 224, 1)",
        "wrong channels",
    ),
    Case(
        "A14",
        "api: keras_impl.lenet5",
        lambda ws: __import__("keras_impl").lenet5(weights=ws / "garbage.weights.h5"),
        "ValueError",
        "garbage.weights.h5 is not a readable Keras .weights.h5 file",
        "corrupt Keras weights file",
    ),
    Case(
        "A15",
        "api: parity.compare",
        lambda ws: _compare(np.zeros((0, 1, 32, 32), np.float32)),
        "ValueError",
        "expected at least one image, received an empty batch",
        "empty batch",
    ),
    Case(
        "A16",
        "api: parity.compare",
        lambda ws: _compare(np.full((1, 1, 32, 32), np.nan, np.float32)),
        "ValueError",
        "expected finite inputs, received 1024 NaN/Inf values",
        "NaN input",
    ),
    Case(
        "A17",
        "api: parity.compare",
        lambda ws: _compare(np.zeros((1, 32, 32, 1), np.float32)),
        "ValueError",
        "expected inputs of shape (N, 1, H, W) (torch layout)",
        "channels-last input",
    ),
    Case(
        "A18",
        "api: parity.transfer_weights",
        lambda ws: _transfer("resnet18", "torch"),
        "TypeError",
        "needs one torch_impl model and one keras_impl model",
        "two torch models",
    ),
    Case(
        "A19",
        "api: parity.transfer_weights",
        lambda ws: _transfer("resnet18", "resnet34"),
        "TransferError",
        "resnet18: keras layer 'layer1_2_conv1' has weights but no counterpart in the torch model",
        "models of two architectures",
    ),
    Case(
        "A20",
        "api: parity.comparison.check.check",
        lambda ws: __import__("parity.comparison.check").comparison.check.check("lenet5", batch=0),
        "ValueError",
        "batch must be an int >= 1 (an empty batch compares nothing), received batch=0",
        "empty batch",
    ),
    Case(
        "A23",
        "api: parity.comparison.check.check",
        lambda ws: __import__("parity.comparison.check").comparison.check.check("lenet5", rtol=-1),
        "ValueError",
        "rtol and atol must be >= 0, received rtol=-1",
        "negative tolerance",
    ),
    Case(
        "A24",
        "api: keras_impl.resnet18",
        lambda ws: __import__("keras_impl").resnet18(classes=5, weights=ws / "r18_10.weights.h5"),
        "ValueError",
        "fc/kernel has shape (512, 10) in the file, (512, 5) in the model",
        "num_classes differs from the file's",
    ),
    Case(
        "A25",
        "api: torch_impl.resnet18",
        lambda ws: __import__("torch_impl").resnet18(weights=ws / "pickled.pth"),
        "ValueError",
        "a pickle with more than tensors in it; pickled code is never run",
        "a pickle of other objects",
    ),
    Case(
        "A26",
        "api: torch_impl.resnet18",
        lambda ws: __import__("torch_impl").resnet18(weights="imagenett"),
        "FileNotFoundError",
        "did you mean 'imagenet'?",
        "misspelt published weights name",
    ),
    Case(
        "A27",
        "api: keras_impl.resnet18",
        lambda ws: __import__("keras_impl").resnet18(weights="Imagenet1k_v1"),
        "FileNotFoundError",
        "did you mean 'IMAGENET1K_V1'?",
        "published weights name in the wrong case",
    ),
    Case(
        "A21",
        "api: parity.training.steps.check_training",
        lambda ws: __import__("parity.training.steps").training.steps.check_training("lenet5", "rmsprop"),
        "ValueError",
        "optimizer must be one of ('sgd', 'adam', 'adamw'), received 'rmsprop'",
        "unknown optimizer",
    ),
    Case(
        "A22",
        "api: parity.weights.convert.convert",
        lambda ws: __import__("parity.weights.convert").weights.convert.convert(
            "resnet18", ws / "r18.pth", ws / "out.txt"
        ),
        "ValueError",
        "cannot convert 'r18.pth' -> 'out.txt': expected a torch checkpoint",
        "unknown target format",
    ),
]

# covered by their own tests (a subprocess, a file system race, a fixture of their own)
ELSEWHERE = [
    (
        "a checkpoint whose unpickling would create a file",
        "torch_impl factories, parity convert (API and CLI)",
        "ValueError: ... is not a torch checkpoint that loads with weights_only=True",
        "tests/test_unsafe_files.py",
    ),
    (
        "a conversion killed (SIGKILL) while writing",
        "python -m parity convert",
        "the target is absent, or the previous file byte for byte; the next write of it removes the killed writer's "
        "temp file",
        "tests/test_interrupted_writes.py",
    ),
    (
        "an ONNX export killed (SIGKILL) while writing, torch and Keras",
        "python -m parity export",
        "the previous file byte for byte; the Keras export child dies with it; the next export removes the temp file "
        "and work folder",
        "tests/test_interrupted_writes.py",
    ),
    (
        "a text file named .png, a truncated PNG, an empty image file",
        "both fine-tune CLIs (check_layout)",
        "warning: skipping 3 unreadable image file(s) in DIR/train: ... (UnidentifiedImageError: ...)",
        "tests/test_bad_image_folders.py",
    ),
    (
        "an image past PIL's decompression-bomb limit",
        "both fine-tune CLIs (check_layout)",
        "named in the warning (DecompressionBombError) and skipped",
        "tests/test_bad_image_folders.py",
    ),
    (
        "a full disk while a checkpoint is written",
        "cnnbase.atomic (every writer)",
        "OSError: cannot write TARGET: No space left on device; the previous file kept, no temp file left",
        "tests/test_bad_image_folders.py",
    ),
    (
        "a learning rate so large the loss becomes NaN",
        "both fine-tune CLIs (cnntune/loop.py)",
        "training diverged in epoch N: the train loss is nan; a lower --lr ... usually helps; the checkpoints and "
        "history of the epochs before kept",
        "tests/test_transfer_torch.py::test_a_diverged_run_stops_with_one_line_and_keeps_the_good_checkpoint, "
        "tests/test_transfer_keras.py::test_a_diverged_run_stops_with_one_line_and_keeps_the_good_checkpoint",
    ),
    (
        "grayscale, RGBA and palette images",
        "both fine-tune loaders",
        "converted to the model's channels",
        "tests/test_bad_image_folders.py",
    ),
    (
        "a JPEG whose data ends early (header intact)",
        "torch_impl CachingImageLoader, keras_impl DecodedImages",
        "cannot read image PATH: image file is truncated ...",
        "tests/test_bad_image_folders.py",
    ),
    (
        "import keras (TensorFlow) before torch_impl/parity",
        "import",
        "ImportError: torchvision cannot be imported after tensorflow in one process ... (instead of a segfault)",
        "tests/test_import_order.py",
    ),
    (
        "a downloaded file whose sha256 does not match",
        "torch_impl/keras_impl weights='IMAGENET1K_V1'",
        "refused, nothing left in the cache",
        "tests/test_pretrained.py::test_tampered_download_is_refused_and_leaves_nothing",
    ),
    (
        "a downloaded file whose sha256 does not match",
        "python -m parity fetch",
        "one line naming the URL and the sha256 prefix; nothing left in either cache",
        "tests/test_pretrained.py::test_parity_fetch_of_a_tampered_file_is_one_line_and_leaves_nothing",
    ),
    (
        "no network",
        "weights='IMAGENET1K_V1', python -m parity fetch",
        "one line naming the URL and the cache to pre-fill",
        "tests/test_pretrained.py::test_unreachable_server_is_one_clear_error",
    ),
    (
        "any size and batch (hypothesis)",
        "parity.comparison.check",
        "parity, or the too-small / only-takes line",
        "tests/test_properties.py",
    ),
    (
        "NaN weights, NaN or Inf outputs, empty outputs",
        "parity.compare, parity.figures",
        "FAIL, never PASS",
        "tests/test_parity.py::test_nan_never_passes, ::test_empty_arrays_never_pass",
    ),
    (
        "TensorFlow's start-up lines",
        "every CLI",
        "kept off stderr on every CPU class (cnnbase.startup_lines; TF_CPP_MIN_LOG_LEVEL=0 set by the user brings "
        "them back), in the CLIs' subprocesses too",
        "tests/test_cli_errors.py::test_framework_startup_lines_stay_off_stderr, "
        "test_a_cli_run_by_a_cli_keeps_them_off_stderr_too",
    ),
    (
        "a bug (not a bad input)",
        "every CLI",
        "PROG: internal error: TYPE: MESSAGE (at FILE:LINE; run again with --debug for the traceback), exit 1",
        "tests/test_cli_errors.py",
    ),
]


# ----------------------------------------------------------------------------------------- running
def build_workspace(ws: Path) -> Path:
    """The files and folders the cases point at (WS/...)."""
    import torch

    import torch_impl

    ws.mkdir(parents=True, exist_ok=True)
    torch.save(torch_impl.resnet18().state_dict(), ws / "r18.pth")
    torch.save(torch_impl.resnet18(num_classes=10).state_dict(), ws / "r18_10.pth")
    (ws / "truncated.pth").write_bytes((ws / "r18.pth").read_bytes()[:4096])
    (ws / "garbage.pth").write_text("not a checkpoint")
    (ws / "empty.pth").write_bytes(b"")
    (ws / "empty.safetensors").write_bytes(b"")
    (ws / "garbage.weights.h5").write_text("not an HDF5 file")
    (ws / "folder.pth").mkdir()
    (ws / "notes.txt").write_text("a file, not a folder")
    import pickle

    import keras_impl

    keras_impl.resnet18(classes=10, classifier_activation=None).save_weights(ws / "r18_10.weights.h5")
    with open(ws / "pickled.pth", "wb") as f:
        pickle.dump({"fc.weight": Path("x")}, f)
    ok = write_colours(ws / "ok", train=2, val=2, side=16)
    one = write_colours(ws / "one_class", train=1, val=1, side=16)
    for split in ("train", "val"):
        for name in ("green", "blue"):
            for f in (one / split / name).iterdir():
                f.unlink()
            (one / split / name).rmdir()
    (ws / "no_train" / "val" / "red").mkdir(parents=True)
    (ws / "no_train" / "val" / "red" / "0.png").write_bytes((ok / "val" / "red" / "0.png").read_bytes())
    mismatch = write_colours(ws / "mismatch", train=1, val=1, side=16)
    for f in (mismatch / "val" / "blue").iterdir():
        f.unlink()
    (mismatch / "val" / "blue").rmdir()
    empty = write_colours(ws / "empty_class", train=1, val=1, side=16)
    for f in (empty / "train" / "green").iterdir():
        f.unlink()
    unreadable = write_colours(ws / "unreadable_class", train=1, val=1, side=16)
    for f in (unreadable / "val" / "green").iterdir():
        f.write_text("not an image")
    return ws


def _mains():
    import cnnspec.__main__
    import cnntoydata.__main__
    import parity.__main__
    from cnntune import cli as finetune_cli

    return {
        "parity": parity.__main__.main,
        "cnnspec": cnnspec.__main__.main,
        "cnntoydata": cnntoydata.__main__.main,
        "torch_impl finetune": lambda argv: finetune_cli.main("torch", ["finetune", "--no-progress", *argv]),
        "keras_impl finetune": lambda argv: finetune_cli.main("keras", ["finetune", "--no-progress", *argv]),
    }


def the_error_line(stderr: str, entry: str) -> str:
    """The one error line of a CLI's ``stderr``, which must hold nothing else: ``PROG: error: ...``
    (PROG is ``python -m ENTRY``, a subcommand's name after it), after argparse's usage block for
    argparse's own errors (a ``usage: `` line and its continuation lines, which start with a space).
    Anything else, a start-up line, a warning, a second line, raises ValueError naming it."""
    lines = stderr.splitlines()
    if not lines:
        raise ValueError("stderr is empty: expected one error line")
    *before, last = lines
    pattern = rf"python -m {re.escape(entry)}(?: [a-z][a-z-]*)?: error: \S.*"
    if not re.fullmatch(pattern, last):
        raise ValueError(f"the last stderr line is not python -m {entry}'s error line: {last!r}")
    if before and not before[0].startswith("usage: "):
        raise ValueError(f"stderr holds more than the error line (and argparse's usage): {before[0]!r}")
    extra = [line for line in before[1:] if not line.startswith(" ") or not line.strip()]
    if extra:
        raise ValueError(f"stderr holds more than the error line (and argparse's usage): {extra[0]!r}")
    return last


def outcome(case: Case, ws: Path, read_stderr: Callable[[], str]) -> tuple:
    """(status or exception name, the message a user sees, whether a traceback was printed, what
    else a CLI's stderr held or None); a CLI's message is its last stderr line."""
    from cnnbase import cli

    if callable(case.given):
        try:
            case.given(ws)
        except Exception as err:
            return type(err).__name__, cli.message(err), False, None
        return "no error", "", False, None
    argv = [a.replace(WS, str(ws)) for a in case.given]
    try:
        status = _mains()[case.entry](argv)
    except SystemExit as done:
        status = done.code
    err = read_stderr()
    try:
        the_error_line(err, case.entry)
        problem = None
    except ValueError as bad:
        problem = str(bad)
    lines = err.splitlines()
    return str(status), (lines[-1] if lines else ""), "Traceback" in err, problem


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return build_workspace(tmp_path_factory.mktemp("robustness"))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_bad_input_gets_its_line(case, workspace, capsys, monkeypatch):
    monkeypatch.chdir(workspace)  # runs that get as far as writing would write here
    capsys.readouterr()
    status, message, traceback, problem = outcome(case, workspace, lambda: capsys.readouterr().err)
    assert (status, traceback) == (case.expect, False), (status, message)
    assert problem is None, problem.replace(str(workspace), WS)
    assert case.match in message.replace(str(workspace), WS), message
    assert "\n" not in message


GOOD_LINE = "python -m parity check: error: weights file not found: missing.pth"
USAGE = (
    "usage: python -m parity check [-h] [--all] [--batch BATCH]\n"
    "                             [--size N [N ...]] [MODEL]"
)


@pytest.mark.parametrize("stderr", [GOOD_LINE + "\n", USAGE + "\n" + GOOD_LINE + "\n", "python -m parity: error: x"])
def test_the_stderr_check_takes_the_error_line_alone_or_after_the_usage(stderr):
    assert the_error_line(stderr, "parity") == stderr.splitlines()[-1]


@pytest.mark.parametrize(
    "stderr, why",
    [
        (
            "2025-01-01 00:00:00.000000: I tensorflow/core/util/port.cc:153] oneDNN custom operations are on. "
            "You may see slightly different numerical results.\n" + GOOD_LINE + "\n",
            "more than the error line",
        ),
        (
            "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n" + GOOD_LINE,
            "more than the error line",
        ),
        (
            "W0000 00:00:1700000000.000000    1234 cuda_executor.cc:1040] failed call to cuInit\n"
            + USAGE
            + "\n"
            + GOOD_LINE,
            "more than the error line",
        ),
        (
            USAGE + "\nwarning: something\n" + GOOD_LINE,
            "more than the error line",
        ),  # after the usage block, still extra
        (USAGE + "\n\n" + GOOD_LINE, "more than the error line"),  # a blank line
        (GOOD_LINE + "\n" + GOOD_LINE, "more than the error line"),  # two error lines
        (
            GOOD_LINE + "\nTraceback (most recent call last):",
            "is not python -m parity's error line",
        ),  # something after it
        ("Error: weights file not found", "is not python -m parity's error line"),  # not the PROG: error: form
        ("python -m cnnspec: error: x", "is not python -m parity's error line"),  # another program's line
        ("python -m parity: error: ", "is not python -m parity's error line"),  # an empty message
        ("", "stderr is empty"),
    ],
)
def test_the_stderr_check_rejects_anything_else(stderr, why):
    """Twin of test_each_bad_input_gets_its_line: the check it makes fails on a stderr with a
    start-up line, a warning or a second line beside the error line, and on a line of another form."""
    with pytest.raises(ValueError, match=re.escape(why)):
        the_error_line(stderr, "parity")


def test_the_table_lists_every_case():
    text = DOC.read_text()
    missing = [c.id for c in CASES if f"| {c.id} |" not in text]
    assert not missing, f"docs/robustness.md lacks {missing}: run python tests/test_robustness.py"
    assert len(CASES) + len(ELSEWHERE) >= 40


# ------------------------------------------------------------------------------------- the table
def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_table(path: Path = DOC) -> Path:
    import contextlib
    import io
    import tempfile

    from cnnbase.atomic import write_text

    ws = build_workspace(Path(tempfile.mkdtemp(prefix="robustness-")))
    rows = []
    for case in CASES:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status, message, _, problem = outcome(case, ws, err.getvalue)
        if problem is not None:  # shown as it is: the test fails until it is fixed
            message += f" [FAILS: {problem}]"
        given = case.entry if callable(case.given) else f"`{' '.join(['python -m ' + case.entry] + list(case.given))}`"
        shown = re.sub(re.escape(str(ws)), WS, message)
        rows.append(
            f"| {case.id} | {_cell(case.what)} | {_cell(given)} | {status} | {_cell(shown)} | "
            f"`tests/test_robustness.py::test_each_bad_input_gets_its_line[{case.id}]` |"
        )
        print(f"{case.id} {status} {shown[:100]}", file=sys.stderr)
    lines = [
        "# Robustness: bad inputs and what they get",
        "",
        "Every command line (`parity`, `cnnspec`, `cnntoydata`, `torch_impl`/`keras_impl finetune`, the benchmarks) "
        "follows",
        "one discipline (`cnnspec/cli.py`): a bad input is one line on stderr, `PROG: error: what was expected, what",
        "was given`, and exit status 2 (argparse's own errors look the same, after the usage); a bug is one line",
        "and exit status 1; `--debug` anywhere on the command line shows the traceback. TensorFlow's start-up",
        "lines stay off stderr on every CPU class (`cnnspec/startup_lines.py`); `TF_CPP_MIN_LOG_LEVEL=0` set by",
        "the user brings them back. Every writer goes through `cnntune/atomic.py` (temp file, fsync, rename): an",
        "interrupted write leaves the previous file, and the next write removes a killed writer's temp file.",
        "",
        f"The {len(CASES)} rows below are `tests/test_robustness.py`, run as a new user would (WS is a scratch "
        "folder with",
        "a good and a truncated checkpoint, garbage files and image folders with one fault each); the messages are",
        "the one stderr line (CLI: nothing else on stderr but argparse's usage before its own errors) or the",
        "exception (API), as shown. Regenerate: `python tests/test_robustness.py`.",
        "",
        "| id | bad input | given | status | message shown | test |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "## Covered by their own tests",
        "",
        "| bad input | entry point | what happens | test |",
        "|---|---|---|---|",
        *[f"| {_cell(a)} | {_cell(b)} | {_cell(c)} | `{d}` |" for a, b, c, d in ELSEWHERE],
        "",
    ]
    return write_text(path, "\n".join(lines))


if __name__ == "__main__":
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    __import__("torch")  # before keras/tensorflow (torchvision's extension)
    __import__("torchvision")
    print(f"wrote {write_table()}")
