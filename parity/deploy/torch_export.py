"""torch_impl models to ONNX (parity.onnx's exporter), OpenVINO (``openvino.convert_model`` of the
module: no ONNX file in between) and ``.pt2`` (``torch.export``), batch dynamic, in this process."""

from __future__ import annotations

import logging
import time
import warnings

from cnnbase.atomic import atomic_path

from .files import DeployExport, atomic_dir, rss_mb, size_mb
from .quantize import quantized
from .table import OPENVINO_XML, PathLike, check_framework, check_quantize


def export_torch(
    name: str, model, out: PathLike, size: tuple | None = None, quantize: str | None = None
) -> DeployExport:
    """Exports a torch_impl model to ``name`` ("onnx", "openvino" or "pt2") at ``out``, batch dynamic;
    ``quantize``: that target's float16 or dynamic-int8 variant instead (see :mod:`.table`)."""
    check_framework(name, "torch")
    check_quantize(name, quantize)
    start = time.perf_counter()
    if quantize is not None:
        quantized(name, out, quantize, lambda src: _export_float(name, model, src, size))
    else:
        _export_float(name, model, out, size)
    seconds = round(time.perf_counter() - start, 2)
    return DeployExport(name, "torch", str(out), seconds, size_mb(out), rss_mb(), "NCHW", quantize)


def _export_float(name: str, model, out: PathLike, size: tuple | None) -> None:
    import torch

    if name == "onnx":
        from ..onnx.export import export_torch as export_onnx

        export_onnx(model, out, size=size)
        return
    spec = model.spec
    c, (h, w) = spec.input_size[0], size or spec.input_size[1:]
    example = (torch.zeros(2, c, h, w),)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if name == "pt2":
                batch = torch.export.Dim("batch", min=1, max=4096)
                program = torch.export.export(model, example, dynamic_shapes=({0: batch},))
                with atomic_path(out, suffix=".pt2") as tmp:
                    torch.export.save(program, str(tmp))
            else:  # openvino
                # its torch frontend imports torch.utils.cpp_extension, which warns "No CUDA runtime is found"
                logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
                import openvino as ov

                with warnings.catch_warnings():  # it traces with torch.jit.trace, which warns it is deprecated
                    warnings.simplefilter("ignore")
                    ov_model = ov.convert_model(model, example_input=example, input=[ov.PartialShape([-1, c, h, w])])
                with atomic_dir(out) as tmp:
                    ov.save_model(ov_model, str(tmp / OPENVINO_XML), compress_to_fp16=False)
    finally:
        model.train(was_training)
