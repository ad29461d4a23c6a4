"""keras_impl models to ONNX (parity.onnx's torch-backend child), LiteRT, SavedModel and OpenVINO.

The three Keras/TensorFlow exports run in one child process on the TensorFlow backend
(:mod:`.keras_child`, run by path, whatever the caller's backend), bounded in time (``timeout``)
and memory (its resident size is watched; over ``max_memory_mb`` it is killed), and dying with
its parent (the same PR_SET_PDEATHSIG start as ONNX's child), so a parent killed outright leaves
no writer behind. Each target is renamed into place only when the child succeeded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnnbase.atomic import atomic_path, process_alive

from ..onnx.export import _CHILD_WITH_PARENT
from .files import DeployExport, atomic_dir, size_mb
from .quantize import LITERT_OPTIONS, quantized
from .table import KERAS_FORMAT, OPENVINO_XML, TARGETS, PathLike, check_framework, check_quantize

CHILD = Path(__file__).with_name("keras_child.py")
# the child's work folder (the model's config and weights) in the system's temp folder:
# keras_deploy_<parent pid>_<random>; one whose parent was killed outright is removed by the next export
WORK_PREFIX = "keras_deploy_"
_WORK_FOLDER = re.compile(re.escape(WORK_PREFIX) + r"(\d+)_[a-z0-9_]{8}")


def remove_stale_work_folders() -> list[Path]:
    """Removes the work folders of Keras deploy exports whose parent process has ended."""
    removed = []
    for entry in os.scandir(tempfile.gettempdir()):
        match = _WORK_FOLDER.fullmatch(entry.name)
        if match and entry.is_dir(follow_symlinks=False) and not process_alive(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def _child_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def export_keras(
    model,
    outs: dict[str, PathLike],
    timeout: float = 600,
    max_memory_mb: float = 16_000,
    quantize: str | None = None,
) -> dict[str, DeployExport]:
    """Exports a keras_impl model to each target in ``outs`` ({"litert": path, ...}); ``quantize``:
    each target's float16 or dynamic-int8 variant instead (see :mod:`.table`)."""
    for name in outs:
        check_framework(name, "keras")
        check_quantize(name, quantize)
    results: dict[str, DeployExport] = {}
    if quantize is not None:  # onnx and openvino: the float export, then quantized in this process
        for name in [n for n in outs if n != "litert"]:
            start = time.perf_counter()
            peak: list[float] = []

            def export_float(src, name=name, peak=peak):
                peak.append(export_keras(model, {name: src}, timeout, max_memory_mb)[name].peak_rss_mb)

            quantized(name, outs[name], quantize, export_float)
            seconds = round(time.perf_counter() - start, 2)
            results[name] = DeployExport(
                name, "keras", str(outs[name]), seconds, size_mb(outs[name]), max(peak), "NHWC", quantize
            )
    elif "onnx" in outs:
        from ..onnx.export import export_keras as export_onnx

        info = export_onnx(model, outs["onnx"], timeout=timeout)
        results["onnx"] = DeployExport(
            "onnx", "keras", info.path, info.seconds, size_mb(info.path), info.peak_rss_mb, "NHWC"
        )
    jobs = {n: p for n, p in outs.items() if n not in results}
    if jobs:
        results.update(_run_child(model, jobs, timeout, max_memory_mb, quantize))
    return results


def _run_child(model, jobs: dict[str, PathLike], timeout: float, max_memory_mb: float, quantize: str | None):
    from keras_impl.weights import config_json, save_variables

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
        remove_stale_work_folders()
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}_")))
        config, weights = work / "model.json", work / "model.safetensors"
        config.write_text(config_json(model))
        save_variables(model, weights)
        # its output goes to files: a pipe nobody reads while the child runs could fill and stall it
        log_out, log_err = open(work / "stdout", "w+"), open(work / "stderr", "w+")
        stack.callback(log_out.close)
        stack.callback(log_err.close)
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_WITH_PARENT, str(os.getpid()), str(CHILD)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=log_out,
            stderr=log_err,
            text=True,
        )
        stack.callback(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        exports = []
        for name, out in jobs.items():
            entry = {"format": KERAS_FORMAT[name], "options": LITERT_OPTIONS[quantize] if quantize else {}}
            if TARGETS[name].suffix == "/":
                folder = stack.enter_context(atomic_dir(out, writers=(proc.pid,)))
                entry["out"] = str(folder / OPENVINO_XML if name == "openvino" else folder)
            else:
                entry["out"] = str(
                    stack.enter_context(atomic_path(out, suffix=TARGETS[name].suffix, writers=(proc.pid,)))
                )
            exports.append(entry)
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
    return {
        name: DeployExport(
            name,
            "keras",
            str(out),
            report["seconds"][KERAS_FORMAT[name]],
            size_mb(out),
            round(peak, 1),
            "NHWC",
            quantize,
        )
        for name, out in jobs.items()
    }
