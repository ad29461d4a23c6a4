"""Deployment targets: one table, an exporter per (target, framework) and a runner per target.

========== ===================== ================================ ============================
target     frameworks            exporter                         runtime (extra)
========== ===================== ================================ ============================
onnx       torch, keras          parity.onnx (as ``export``)      onnxruntime (onnx)
litert     keras                 Keras' model.export("litert")    ai_edge_litert (deploy)
saved_model keras                Keras' model.export("tf_saved_model") TensorFlow (keras)
openvino   torch, keras          openvino.convert_model(torch) /  openvino (deploy)
                                 Keras' model.export("openvino")
pt2        torch                 torch.export + torch.export.save torch.export.load (torch)
========== ===================== ================================ ============================

Why not every pair: LiteRT and SavedModel are TensorFlow artifacts; a torch model reaches them only
through ``litert-torch``/``ai-edge-torch`` (not an extra of this project). Keras' NHWC graph converts
to LiteRT without layout transposes, which is the point of the LiteRT target. ``.pt2`` is
torch.export's archive, a torch program; a Keras model has ONNX, LiteRT and SavedModel for that.
OpenVINO converts from torch directly (``openvino.convert_model`` of the nn.Module: no ONNX file in
between, one converter fewer to trust) and from Keras through Keras' own exporter (a traced
``tf.function`` on the TensorFlow backend).

The three Keras/TensorFlow exports run in one child process on the TensorFlow backend
(:mod:`.keras_child`, whatever the caller's backend), bounded in time (``timeout``) and memory
(its resident size is watched; over ``max_memory_mb`` it is killed). Every output is atomic: a
file through :func:`cnnbase.atomic.atomic_path`, a folder (SavedModel, OpenVINO's model.xml +
model.bin) written as a temp folder beside the target and renamed onto it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnbase.atomic import atomic_path, check_writable

PathLike = str | os.PathLike
CHILD = Path(__file__).with_name("keras_child.py")
OPENVINO_XML = "model.xml"  # inside an OpenVINO target folder, beside model.bin


@dataclass(frozen=True)
class Target:
    name: str
    frameworks: tuple[str, ...]
    runtime: str  # the module that runs it
    extra: str  # classic-cnns[extra] installs that module
    suffix: str  # a file's ending, or "/" for a folder
    why: str  # which frameworks reach it, and why


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("onnx", ("torch", "keras"), "onnxruntime", "onnx", ".onnx", "both (parity.onnx's exports)"),
        Target(
            "litert",
            ("keras",),
            "ai_edge_litert",
            "deploy",
            ".tflite",
            "keras only: Keras' LiteRT converter keeps its NHWC graph; torch needs litert-torch, not an extra here",
        ),
        Target(
            "saved_model",
            ("keras",),
            "tensorflow",
            "keras",
            "/",
            "keras only: a TensorFlow artifact (Keras' tf_saved_model export); torch has no SavedModel exporter",
        ),
        Target(
            "openvino",
            ("torch", "keras"),
            "openvino",
            "deploy",
            "/",
            "both: openvino.convert_model of the torch module, Keras' own openvino export",
        ),
        Target("pt2", ("torch",), "torch", "torch", ".pt2", "torch only: torch.export's archive of a torch program"),
    )
}
KERAS_FORMAT = {"litert": "litert", "saved_model": "tf_saved_model", "openvino": "openvino"}


def help_text() -> str:
    return "; ".join(f"{t.name}: {t.why}" for t in TARGETS.values())


def parse_targets(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown or not names:
        raise ValueError(f"unknown target {', '.join(unknown) or repr(text)}; choose from {', '.join(TARGETS)}")
    return list(dict.fromkeys(names))


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


@dataclass
class DeployExport:
    target: str
    framework: str
    path: str
    seconds: float
    size_mb: float
    peak_rss_mb: float  # the exporting process (the child's for keras)
    layout: str  # the artifact's input layout: NCHW (torch) or NHWC (keras)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def size_mb(path: PathLike) -> float:
    p = Path(path)
    total = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return round(total / 1e6, 2)


def _rss_mb(who=resource.RUSAGE_SELF) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


@contextlib.contextmanager
def atomic_dir(target: PathLike):
    """Yields a fresh temp folder beside ``target``; on success it replaces ``target`` (an old
    folder is moved aside first and removed after), on error it is removed."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"cannot write {target}: a file is in its place (this target is a folder)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        old = None
        if target.exists():
            old = target.with_name(f"{tmp.name}.old")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def artifact_file(name: str, path: PathLike) -> Path:
    """The file a runtime opens: OpenVINO's model.xml inside its folder, else the path."""
    return Path(path) / OPENVINO_XML if name == "openvino" else Path(path)


# ---------------------------------------------------------------------------------------- torch
def export_torch(name: str, model, out: PathLike, size: tuple | None = None) -> DeployExport:
    """Exports a torch_impl model to ``name`` ("onnx", "openvino" or "pt2") at ``out``, batch dynamic."""
    import torch

    check_framework(name, "torch")
    if name == "onnx":
        from ..onnx.export import export_torch as export_onnx

        info = export_onnx(model, out, size=size)
        return DeployExport(name, "torch", info.path, info.seconds, size_mb(out), info.peak_rss_mb, "NCHW")
    spec = model.spec
    c, (h, w) = spec.input_size[0], size or spec.input_size[1:]
    example = (torch.zeros(2, c, h, w),)
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        with torch.no_grad():
            if name == "pt2":
                batch = torch.export.Dim("batch", min=1, max=4096)
                program = torch.export.export(model, example, dynamic_shapes=({0: batch},))
                with atomic_path(out, suffix=".pt2") as tmp:
                    torch.export.save(program, str(tmp))
            else:  # openvino
                import warnings

                import openvino as ov

                with warnings.catch_warnings():  # it traces with torch.jit.trace, which warns it is deprecated
                    warnings.simplefilter("ignore")
                    ov_model = ov.convert_model(model, example_input=example, input=[ov.PartialShape([-1, c, h, w])])
                with atomic_dir(out) as tmp:
                    ov.save_model(ov_model, str(tmp / OPENVINO_XML), compress_to_fp16=False)
    finally:
        model.train(was_training)
    seconds = round(time.perf_counter() - start, 2)
    return DeployExport(name, "torch", str(out), seconds, size_mb(out), _rss_mb(), "NCHW")


# ---------------------------------------------------------------------------------------- keras
def _child_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def export_keras(
    model, outs: dict[str, PathLike], timeout: float = 600, max_memory_mb: float = 16_000
) -> dict[str, DeployExport]:
    """Exports a keras_impl model to each target in ``outs`` ({"litert": path, ...}). ONNX goes
    through :mod:`parity.onnx.export` (its torch-backend child); LiteRT, SavedModel and OpenVINO
    through one TensorFlow-backend child (:mod:`.keras_child`), killed after ``timeout`` seconds or
    above ``max_memory_mb`` resident. Each target is renamed into place only when the child succeeded."""
    for name in outs:
        check_framework(name, "keras")
    results: dict[str, DeployExport] = {}
    if "onnx" in outs:
        from ..onnx.export import export_keras as export_onnx

        info = export_onnx(model, outs["onnx"], timeout=timeout)
        results["onnx"] = DeployExport(
            "onnx", "keras", info.path, info.seconds, size_mb(info.path), info.peak_rss_mb, "NHWC"
        )
    jobs = {n: p for n, p in outs.items() if n != "onnx"}
    if not jobs:
        return results
    from keras_impl.weights import save_variables

    start = time.perf_counter()
    env = {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "CUDA_VISIBLE_DEVICES": "",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONWARNINGS": "ignore",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="keras_deploy_")))
        config, weights = work / "model.json", work / "model.safetensors"
        config.write_text(model.to_json())
        save_variables(model, weights)
        # its output goes to files: a pipe nobody reads while the child runs could fill and stall it
        log_out, log_err = open(work / "stdout", "w+"), open(work / "stderr", "w+")
        stack.callback(log_out.close)
        stack.callback(log_err.close)
        proc = subprocess.Popen(
            [sys.executable, str(CHILD)], env=env, stdin=subprocess.PIPE, stdout=log_out, stderr=log_err, text=True
        )
        stack.callback(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        exports = []
        for name, out in jobs.items():
            if TARGETS[name].suffix == "/":
                folder = stack.enter_context(atomic_dir(out))
                exports.append(
                    {
                        "format": KERAS_FORMAT[name],
                        "out": str(artifact_file(name, folder) if name == "openvino" else folder),
                    }
                )
            else:
                tmp = stack.enter_context(atomic_path(out, suffix=TARGETS[name].suffix, writers=(proc.pid,)))
                exports.append({"format": KERAS_FORMAT[name], "out": str(tmp)})
        job = json.dumps({"config": str(config), "weights": str(weights), "exports": exports})
        peak = 0.0
        proc.stdin.write(job + "\n")
        proc.stdin.close()
        # a thread-free watch: stdout and stderr are small (one JSON line, an error's text)
        while proc.poll() is None:
            peak = max(peak, _child_rss_mb(proc.pid))
            if peak > max_memory_mb:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"keras export of {model.name} passed {max_memory_mb:.0f} MB and was stopped")
            if time.perf_counter() - start > timeout:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"keras export of {model.name} did not finish in {timeout:.0f}s")
            time.sleep(0.2)
        stdout, stderr = (work / "stdout").read_text(), (work / "stderr").read_text()
        if proc.returncode != 0:
            raise RuntimeError(f"keras export of {model.name} failed (exit {proc.returncode}):\n{stderr[-3000:]}")
        report = json.loads(stdout.strip().splitlines()[-1])
    peak = max(peak, report.get("peak_rss_mb", 0.0))
    for name, out in jobs.items():
        seconds = report["seconds"][KERAS_FORMAT[name]]
        results[name] = DeployExport(name, "keras", str(out), seconds, size_mb(out), round(peak, 1), "NHWC")
    return results


# ---------------------------------------------------------------------------------------- runners
def litert_ops(path: PathLike) -> dict[str, int]:
    """Operator name -> count in a LiteRT flatbuffer (the interpreter's op list)."""
    from ai_edge_litert.interpreter import Interpreter

    counts: dict[str, int] = {}
    for op in Interpreter(model_path=str(path))._get_ops_details():
        counts[op["op_name"]] = counts.get(op["op_name"], 0) + 1
    return counts


def run(name: str, path: PathLike, inputs: np.ndarray) -> np.ndarray:
    """Runs the artifact at ``path`` in ``name``'s own runtime on ``inputs`` (in its layout)."""
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    if name == "onnx":
        from ..onnx.fourway import run_onnx

        return run_onnx(path, inputs)
    if name == "litert":
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, inputs.shape, strict=False)
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, inputs)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()
    if name == "saved_model":
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


# ---------------------------------------------------------------------------------------- check
@dataclass
class TargetRow:
    target: str
    framework: str
    passed: bool
    max_rel: float | None = None
    top1: float | None = None
    size_mb: float | None = None
    export_s: float | None = None
    peak_rss_mb: float | None = None
    transposes: int | None = None  # litert: TRANSPOSE ops in the flatbuffer
    note: str = ""  # the missing runtime's line, an error

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class DeployResult:
    rows: list[TargetRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "rows": [r.to_dict() for r in self.rows]}


def export_all(torch_model, keras_model, names, workdir: PathLike, size=None, timeout: float = 600):
    """Exports every reachable (target, framework) pair into ``workdir``; returns
    ``(exports, missing)``: {(target, framework): DeployExport}, [TargetRow for a missing runtime]."""
    workdir = Path(workdir)
    exports, missing = {}, []
    keras_outs = {}
    for name in names:
        line = runtime_missing(name)
        if line is not None:
            missing.extend(TargetRow(name, fw, False, note=line) for fw in TARGETS[name].frameworks)
            continue
        t = TARGETS[name]
        ext = t.suffix if t.suffix != "/" else ""
        if "torch" in t.frameworks:
            out = workdir / f"{torch_model.spec.name}.torch.{name}{ext}"
            exports[(name, "torch")] = export_torch(name, torch_model, out, size=size)
        if "keras" in t.frameworks:
            keras_outs[name] = workdir / f"{torch_model.spec.name}.keras.{name}{ext}"
    for name, info in export_keras(keras_model, keras_outs, timeout=timeout).items() if keras_outs else ():
        exports[(name, "keras")] = info
    return exports, missing


def compare_all(torch_model, exports: dict, inputs: np.ndarray, rtol: float, atol: float) -> list[TargetRow]:
    """Runs each export on ``inputs`` (NCHW; NHWC for Keras' artifacts) against the torch model's logits."""
    import torch

    from ..comparison.compare import figures, to_nhwc

    with torch.no_grad():
        reference = torch_model.eval()(torch.from_numpy(inputs)).numpy()
    rows = []
    for (name, framework), info in exports.items():
        x = to_nhwc(inputs) if info.layout == "NHWC" else inputs
        try:
            out = run(name, info.path, x)
            f = figures(f"{name} {framework}", reference, out, rtol, atol, classes=True)
            row = TargetRow(name, framework, f.passed, f.max_rel, f.top1, info.size_mb, info.seconds, info.peak_rss_mb)
        except Exception as err:  # a runtime that refuses the artifact: a failed row, not a crash
            row = TargetRow(
                name, framework, False, size_mb=info.size_mb, export_s=info.seconds, note=f"{type(err).__name__}: {err}"
            )
        if name == "litert":
            row.transposes = litert_ops(info.path).get("TRANSPOSE", 0)
        rows.append(row)
    return rows


def deploy_check(
    torch_model, keras_model, names, inputs: np.ndarray, rtol: float, atol: float, workdir=None, size=None
) -> DeployResult:
    """Exports ``torch_model`` and ``keras_model`` (equal weights) to every target in ``names``,
    runs each in its runtime and compares with the torch model: one row per (target, framework)."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="parity_deploy_"))
        exports, missing = export_all(torch_model, keras_model, names, workdir, size=size)
        rows = compare_all(torch_model, exports, inputs, rtol, atol)
    return DeployResult(missing + rows)


def export(name: str, target_name: str, framework: str, out, weights=None, size=None, seed: int = 0) -> DeployExport:
    """``python -m parity export NAME --format TARGET``: one artifact from ``framework``."""

    from ..twins import model_to_export

    t = target(target_name)
    check_framework(target_name, framework)
    if t.suffix != "/":
        check_writable(out, (t.suffix,))
    elif Path(out).exists() and not Path(out).is_dir():
        raise NotADirectoryError(f"cannot write {out}: {target_name} writes a folder and a file is in its place")
    model = model_to_export(name, framework, weights, size, seed)
    if framework == "torch":
        return export_torch(target_name, model, out, size=size)
    return export_keras(model, {target_name: out})[target_name]


def targets_argument(text: str) -> list[str]:
    """argparse's ``type=`` for ``--targets onnx,litert,...``."""
    import argparse

    try:
        return parse_targets(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def row_line(model: str, row: TargetRow) -> str:
    """One line of ``check --targets``' table."""
    head = f"{model:17s} {row.target + ' ' + row.framework:17s}"
    if row.max_rel is None:
        return f"{head} {'FAIL':>8s}  {row.note.splitlines()[0] if row.note else 'no result'}"
    extra = f", {row.transposes} transposes" if row.transposes is not None else ""
    return (
        f"{head} {'':>8s} {row.max_rel:10.2e} {row.top1 * 100:5.0f}%  {'':6s}  {'ok' if row.passed else 'FAIL'}"
        f"  ({row.size_mb:.2f} MB, export {row.export_s:.1f}s{extra})"
    )
