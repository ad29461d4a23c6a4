"""Each target's own runtime: onnxruntime, the LiteRT interpreter (``ai_edge_litert``), TensorFlow
for the SavedModel, OpenVINO's CPU runtime, ``torch.export.load``. LiteRT's interpreter announces
its XNNPACK delegate on stderr from C++ ("INFO: Created TensorFlow Lite XNNPACK delegate for
CPU."), so it is created under :func:`cnnbase.startup_lines.filtered_stderr`, which drops that
line (and TensorFlow's start-up lines) and keeps every other."""

from __future__ import annotations

import numpy as np

from cnnbase.startup_lines import filtered_stderr

from .table import PathLike, artifact_file


def _interpreter(path: PathLike):
    from ai_edge_litert.interpreter import Interpreter

    with filtered_stderr():
        return Interpreter(model_path=str(path))


def litert_ops(path: PathLike) -> dict[str, int]:
    """Operator name -> count in a LiteRT flatbuffer (the interpreter's op list)."""
    counts: dict[str, int] = {}
    for op in _interpreter(path)._get_ops_details():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts


def run(name: str, path: PathLike, inputs: np.ndarray) -> np.ndarray:
    """Runs the artifact at ``path`` in ``name``'s own runtime on ``inputs`` (in its layout)."""
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    if name == "onnx":
        from ..onnx.fourway import run_onnx

        return run_onnx(path, inputs)
    if name == "litert":
        interpreter = _interpreter(path)
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, inputs.shape, strict=False)
        with filtered_stderr():  # the delegate is applied (and announced) when tensors are allocated
            interpreter.allocate_tensors()
        interpreter.set_tensor(index, inputs)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()
    if name == "saved_model":
        with filtered_stderr():
            import tensorflow as tf

        loaded = tf.saved_model.load(str(path))
        out = loaded.serve(tf.constant(inputs))
        return np.asarray(out[0] if isinstance(out, (list, tuple)) else out)
    if name == "openvino":
        import openvino as ov

        core = ov.Core()
        # f32 end to end: on CPUs with bf16 units OpenVINO would otherwise infer in bfloat16
        compiled = core.compile_model(str(artifact_file(name, path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return np.asarray(compiled(inputs)[compiled.output(0)])
    if name == "pt2":
        import torch

        program = torch.export.load(str(path))
        with torch.no_grad():
            out = program.module()(torch.from_numpy(inputs))
        return (out[0] if isinstance(out, (list, tuple)) else out).numpy()
    raise ValueError(f"unknown target {name!r}")
