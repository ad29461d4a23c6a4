"""The deployment targets' table: which framework reaches which target, which runtime runs it,
which quantized variants it has, and the one-line answers for a pair that does not exist.

========== ===================== ================================ ============================
target     frameworks            exporter                         runtime (extra)
========== ===================== ================================ ============================
onnx       torch, keras          parity.onnx (as ``export``)      onnxruntime (onnx)
litert     keras                 the SavedModel, converted as     ai_edge_litert (deploy)
                                 Keras' export("litert") does
saved_model keras                Keras' model.export("tf_saved_model") TensorFlow (keras)
openvino   torch, keras          openvino.convert_model(torch /   openvino (deploy)
                                 the SavedModel)
pt2        torch                 torch.export + torch.export.save torch.export.load (torch)
========== ===================== ================================ ============================

Why not every pair: LiteRT and SavedModel are TensorFlow artifacts; a torch model reaches them only
through ``litert-torch``/``ai-edge-torch`` (not an extra of this project). Keras' NHWC graph converts
to LiteRT without layout transposes, which is the point of the LiteRT target. ``.pt2`` is
torch.export's archive, a torch program; a Keras model has ONNX, LiteRT and SavedModel for that.
OpenVINO converts from torch directly (``openvino.convert_model`` of the nn.Module: no ONNX file in
between, one converter fewer to trust) and from Keras' SavedModel. The Keras side traces the model
once, for Keras' own SavedModel export, and converts that folder to LiteRT and OpenVINO
(:mod:`.keras_child`): Keras' litert export writes the same SavedModel and converts it the same way,
and each of Keras' exports would trace and write the model again.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

PathLike = str | os.PathLike
OPENVINO_XML = "model.xml"  # inside an OpenVINO target folder, beside model.bin


@dataclass(frozen=True)
class Target:
    name: str
    frameworks: tuple[str, ...]
    runtime: str  # the module that runs it
    extra: str  # classic-cnns[extra] installs that module
    suffix: str  # a file's ending, or "/" for a folder
    why: str  # which frameworks reach it, and why
    quantize: dict[str, str]  # mode -> how (the modes this target has); absent: why not, in NO_QUANTIZE


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "onnx",
            ("torch", "keras"),
            "onnxruntime",
            "onnx",
            ".onnx",
            "both (parity.onnx's exports)",
            {"dynamic-int8": "onnxruntime.quantization.quantize_dynamic of the float export (int8 weights)"},
        ),
        Target(
            "litert",
            ("keras",),
            "ai_edge_litert",
            "deploy",
            ".tflite",
            "keras only: Keras' LiteRT converter keeps its NHWC graph; torch needs litert-torch, not an extra here",
            {
                "float16": "TFLiteConverter optimizations=[DEFAULT], supported_types=[float16] (float16 weights)",
                "dynamic-int8": "TFLiteConverter optimizations=[DEFAULT] (int8 weights, dynamic-range)",
            },
        ),
        Target(
            "saved_model",
            ("keras",),
            "tensorflow",
            "keras",
            "/",
            "keras only: a TensorFlow artifact (Keras' tf_saved_model export); torch has no SavedModel exporter",
            {},
        ),
        Target(
            "openvino",
            ("torch", "keras"),
            "openvino",
            "deploy",
            "/",
            "both: openvino.convert_model of the torch module, Keras' own openvino export",
            {
                "float16": "openvino.save_model(compress_to_fp16=True) (float16 weights)",
                "dynamic-int8": "nncf.compress_weights (int8 weights; needs pip install nncf)",
            },
        ),
        Target(
            "pt2", ("torch",), "torch", "torch", ".pt2", "torch only: torch.export's archive of a torch program", {}
        ),
    )
}
KERAS_FORMAT = {"litert": "litert", "saved_model": "tf_saved_model", "openvino": "openvino"}
QUANTIZE_MODES = ("float16", "dynamic-int8")
# why a target has no variant of a mode: one line each
NO_QUANTIZE = {
    "onnx": "onnx has no float16 variant here (it needs onnxconverter-common, not an extra of this project)",
    "saved_model": "saved_model has no quantized variant: TensorFlow Serving runs it in float32; use litert",
    "pt2": "pt2 has no quantized variant here: torch.export of a quantized module is not a stable format; use onnx",
}


def help_text() -> str:
    return "; ".join(f"{t.name}: {t.why}" for t in TARGETS.values())


def quantize_help() -> str:
    """Which target has which quantized variant, for ``--quantize``'s help."""
    parts = [f"{t.name}: {', '.join(t.quantize) or 'none'}" for t in TARGETS.values()]
    return (
        "a quantized variant, with its own figures (top-1 agreement with float32 on a fixed probe batch, "
        f"max relative error, size), not held to the float32 tolerance. {'; '.join(parts)}"
    )


def parse_targets(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown or not names:
        raise ValueError(f"unknown target {', '.join(unknown) or repr(text)}; choose from {', '.join(TARGETS)}")
    return list(dict.fromkeys(names))


def targets_argument(text: str) -> list[str]:
    """argparse's ``type=`` for ``--targets onnx,litert,...``."""
    try:
        return parse_targets(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def target(name: str) -> Target:
    parse_targets(name)
    return TARGETS[name]


def runtime_missing(name: str) -> str | None:
    """None when ``name``'s runtime imports, else the one line naming the extra to install."""
    t = TARGETS[name]
    try:
        importlib.import_module(t.runtime)
    except ImportError as err:
        return f"{name}: its runtime {t.runtime} is not installed ({err}); pip install 'classic-cnns[{t.extra}]'"
    return None


def check_framework(name: str, framework: str) -> None:
    t = TARGETS[name]
    if framework not in t.frameworks:
        raise ValueError(f"{name} is exported from {' or '.join(t.frameworks)}, not {framework}: {t.why}")


def quantize_missing(name: str, mode: str) -> str | None:
    """None when ``name`` has a ``mode`` variant that can be made here, else the one line why not."""
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"--quantize takes {' or '.join(QUANTIZE_MODES)}, received {mode!r}")
    if mode not in TARGETS[name].quantize:
        return NO_QUANTIZE[name] if name != "onnx" or mode == "float16" else f"onnx has no {mode} variant"
    if name == "openvino" and mode == "dynamic-int8" and importlib.util.find_spec("nncf") is None:
        return "openvino's dynamic-int8 variant needs nncf (pip install nncf), which is not installed"
    return None


def check_quantize(name: str, mode: str | None) -> None:
    if mode is not None and (line := quantize_missing(name, mode)) is not None:
        raise ValueError(line)


def artifact_file(name: str, path: PathLike) -> Path:
    """The file a runtime opens: OpenVINO's model.xml inside its folder, else the path."""
    return Path(path) / OPENVINO_XML if name == "openvino" else Path(path)
