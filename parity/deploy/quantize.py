"""Quantized variants of a float32 export: ONNX through onnxruntime's ``quantize_dynamic``,
OpenVINO through ``save_model(compress_to_fp16=True)`` or nncf's ``compress_weights``, LiteRT
through the TFLite converter's options (:data:`LITERT_OPTIONS`, applied in :mod:`.keras_child`,
since the converter runs there). Each one reads the float artifact and writes the variant
atomically; which target has which mode is :mod:`.table`'s."""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path

from cnnbase.atomic import atomic_path

from .files import atomic_dir
from .table import OPENVINO_XML, PathLike, check_quantize

# the TFLiteConverter attributes a LiteRT variant sets (keras_child.litert_bytes), named as strings
# here (the child, which has TensorFlow, turns them into tf.lite.Optimize / tf.float16)
LITERT_OPTIONS = {
    "float16": {"optimizations": ["DEFAULT"], "target_spec": {"supported_types": ["float16"]}},
    "dynamic-int8": {"optimizations": ["DEFAULT"]},
}


def quantize_onnx(src: PathLike, out: PathLike, mode: str) -> None:
    """int8 weights, activations quantized at run time (onnxruntime's dynamic quantization)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    check_quantize("onnx", mode)
    with atomic_path(out, suffix=".onnx") as tmp:
        logging.disable(
            logging.WARNING
        )  # its root-logger advice to pre-process first (shape inference) is for static int8
        try:
            quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)


def quantize_openvino(src: PathLike, out: PathLike, mode: str) -> None:
    """float16 weights (OpenVINO's compression), or int8 weights through nncf."""
    import openvino as ov

    check_quantize("openvino", mode)
    model = ov.Core().read_model(str(Path(src) / OPENVINO_XML))
    if mode == "dynamic-int8":
        import nncf

        nncf.set_log_level(logging.ERROR)  # its statistics table and progress bar are not this command's output
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            model = nncf.compress_weights(model)
    with atomic_dir(out) as tmp:
        ov.save_model(model, str(tmp / OPENVINO_XML), compress_to_fp16=mode == "float16")


def quantized(name: str, out: PathLike, mode: str, export_float) -> None:
    """Runs ``export_float(path)`` into a temp place, then writes ``name``'s ``mode`` variant to ``out``."""
    check_quantize(name, mode)
    with tempfile.TemporaryDirectory(prefix="parity_quantize_") as work:
        src = Path(work) / ("float.onnx" if name == "onnx" else "float")
        export_float(src)
        (quantize_onnx if name == "onnx" else quantize_openvino)(src, out, mode)
