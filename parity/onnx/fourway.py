"""Four-way comparison: torch, keras, onnxruntime on the torch export, onnxruntime on the keras export.

Besides outputs, the exported graphs are compared: input/output names and shapes, a dynamic batch
axis, the number of weights stored as initializers against the spec's parameters and BatchNorm
statistics, and the op-type histogram of each graph.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import cnnspec

from ..comparison.compare import DEFAULT_ATOL, DEFAULT_RTOL, Report, figures, keras_outputs, to_nhwc, torch_outputs
from .export import EXPORT_BATCH, ExportInfo, KerasExport, export_torch, start_export_keras


@dataclass
class GraphInfo:
    path: str
    inputs: dict[str, list]
    outputs: dict[str, list]
    dynamic_batch: bool
    initializer_elements: int  # all float initializers (BatchNorm may be folded or decomposed)
    weight_elements: int  # float initializers with >= 2 non-unit axes: conv kernels, linear matrices
    op_histogram: dict[str, int]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def graph_info(path) -> GraphInfo:
    """Validates ``path`` with onnx.checker and summarises its interface and contents."""
    import onnx

    onnx.checker.check_model(str(path))  # by path: the C++ checker reads the file (a loaded model is serialised again)
    model = onnx.load(str(path))

    def dims(value):
        return [d.dim_param if d.dim_param else d.dim_value for d in value.type.tensor_type.shape.dim]

    init_names = {i.name for i in model.graph.initializer}
    inputs = {v.name: dims(v) for v in model.graph.input if v.name not in init_names}
    outputs = {v.name: dims(v) for v in model.graph.output}
    dynamic = all(isinstance(d[0], str) and d[0] for d in list(inputs.values()) + list(outputs.values()))
    floats = [
        i
        for i in model.graph.initializer
        if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)
    ]
    elements = sum(int(np.prod(i.dims)) for i in floats)
    weights = sum(int(np.prod(i.dims)) for i in floats if sum(d > 1 for d in i.dims) >= 2)
    ops = Counter(node.op_type for node in model.graph.node)
    return GraphInfo(str(path), inputs, outputs, dynamic, elements, weights, dict(sorted(ops.items())))


def onnx_session(path, spinning: bool = True):
    """An onnxruntime CPU session for ``path`` (its warnings off), to call many times.
    ``spinning=False`` stops its idle worker threads from busy-waiting after each run, which would
    slow whatever runs next in the process (a benchmark's next contender)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(path, inputs: np.ndarray) -> np.ndarray:
    session = onnx_session(path)
    return session.run(None, {session.get_inputs()[0].name: inputs})[0]


def expected_weight_elements(spec: cnnspec.ModelSpec, include_aux: bool = False, framework: str = "torch") -> int:
    """Elements of the tensors with two or more non-unit axes: conv kernels, linear and attention
    matrices, a position embedding table. What every faithful export stores.

    The exporters' optimisers fold BatchNorm into the preceding conv (torch) or into one scale
    per channel (keras on torch), which changes the count of 1-D tensors (biases, statistics) but
    never that of the kernels, so this is the count compared with the spec. Keras keeps the
    attention's q/k/v biases as (heads, D / heads) tables: ``framework="keras"`` counts them too.
    """
    total = 0
    for layer in cnnspec.analyse(spec, include_aux=include_aux).leaves:
        node = layer.node
        if isinstance(node, (cnnspec.Conv, cnnspec.Linear)):
            total += layer.params - (node.out if node.bias else 0)
        elif isinstance(node, cnnspec.MultiHeadAttention):
            d = layer.in_features
            total += 4 * d * d + (3 * d if framework == "keras" and node.heads > 1 and d > node.heads else 0)
        elif isinstance(node, cnnspec.PositionEmbedding) and min(layer.input_shape) > 1:
            total += layer.params
    return total


@dataclass
class OnnxResult:
    model: str
    reports: list[Report] = field(default_factory=list)
    graphs: dict[str, GraphInfo] = field(default_factory=dict)
    exports: dict[str, ExportInfo] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems and all(r.passed for r in self.reports)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "passed": self.passed,
            "problems": self.problems,
            "reports": [r.to_dict() for r in self.reports],
            "graphs": {k: g.to_dict() for k, g in self.graphs.items()},
            "exports": {k: e.to_dict() for k, e in self.exports.items()},
        }


def check_graphs(spec: cnnspec.ModelSpec, graphs: dict[str, GraphInfo], size) -> list[str]:
    """Interface and content checks of both exports against the spec; a list of problems."""
    problems = []
    c, (h, w) = spec.input_size[0], size
    expected_in = {"torch": [c, h, w], "keras": [h, w, c]}
    for framework, g in graphs.items():
        want = expected_weight_elements(spec, framework=framework)
        ((in_name, in_dims),) = g.inputs.items()
        ((out_name, out_dims),) = g.outputs.items()
        if in_dims[1:] != expected_in[framework]:
            problems.append(
                f"{framework} export: input {in_name} has shape {in_dims}, expected [batch, {expected_in[framework]}]"
            )
        if out_dims[1:] != [spec.num_classes]:
            problems.append(
                f"{framework} export: output {out_name} has shape {out_dims}, expected [batch, {spec.num_classes}]"
            )
        if not g.dynamic_batch:
            problems.append(f"{framework} export: the batch axis is not dynamic ({in_dims} -> {out_dims})")
        if g.weight_elements != want:
            problems.append(
                f"{framework} export stores {g.weight_elements:,} kernel/matrix weights, the spec has {want:,}"
            )
    names = {framework: (list(g.inputs), list(g.outputs)) for framework, g in graphs.items()}
    if len(set(map(str, names.values()))) > 1:
        problems.append(f"input/output names differ between exports: {names}")
    return problems


def onnx_check(
    torch_model,
    keras_model,
    inputs: np.ndarray,
    workdir: str | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    keep: bool = False,
    keras_export: KerasExport | None = None,
) -> OnnxResult:
    """Exports both models (same weights expected), runs both files in onnxruntime on ``inputs``
    (a batch size other than the export's), and compares all four against torch.

    The Keras export runs in a subprocess while this process exports and runs the torch side;
    ``keras_export`` is one the caller started earlier (:func:`~parity.onnx.export.start_export_keras`,
    into ``workdir``), so that it overlaps even more."""
    spec = torch_model.spec
    size = tuple(inputs.shape[2:])
    result = OnnxResult(spec.name)
    if inputs.shape[0] == EXPORT_BATCH:
        result.problems.append(
            f"use a batch size other than {EXPORT_BATCH} (the export's) to prove the batch axis is dynamic"
        )
    own_dir = None
    if workdir is None:
        own_dir = tempfile.TemporaryDirectory(prefix="parity_onnx_")
        workdir = own_dir.name
    try:
        paths = onnx_paths(spec.name, workdir)
        keras_export = keras_export or start_export_keras(keras_model, paths["keras"])
        try:
            result.exports["torch"] = export_torch(torch_model, paths["torch"], size=size)
            result.graphs["torch"] = graph_info(paths["torch"])
            reference = torch_outputs(torch_model, inputs, [])["output"]
            outputs = {
                "keras": keras_outputs(keras_model, to_nhwc(inputs), [])["output"],
                "onnx(torch)": run_onnx(paths["torch"], inputs),
            }
        finally:
            result.exports["keras"] = keras_export.wait()
        result.graphs["keras"] = graph_info(paths["keras"])
        result.problems += check_graphs(spec, result.graphs, size)
        outputs["onnx(keras)"] = run_onnx(paths["keras"], to_nhwc(inputs))
        for label, out in outputs.items():
            result.reports.append(
                Report(
                    spec.name,
                    f"torch vs {label}",
                    figures("output", reference, out, rtol, atol, classes=True),
                    rtol=rtol,
                    atol=atol,
                )
            )
    finally:
        if own_dir is not None and not keep:
            own_dir.cleanup()
    return result


def onnx_paths(name: str, workdir) -> dict[str, Path]:
    """Where :func:`onnx_check` writes the two exports of ``name``."""
    return {"torch": Path(workdir) / f"{name}.torch.onnx", "keras": Path(workdir) / f"{name}.keras.onnx"}


def corrupt_initializer(src, dst, index: int = 0, delta: float = 1e-2) -> str:
    """Writes a copy of ``src`` with one element of the largest initializer changed; returns its name.
    For tests: the comparison must then fail."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    init = max(model.graph.initializer, key=lambda i: int(np.prod(i.dims)))
    array = numpy_helper.to_array(init).copy()
    array.flat[index] += delta * max(1.0, float(np.abs(array).max()))
    init.CopyFrom(numpy_helper.from_array(array, init.name))
    onnx.save(model, str(dst))
    return init.name
