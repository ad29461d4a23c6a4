"""``check(name)``: build both models, transfer, compare; the heart of ``python -m parity check``."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

import cnnspec
from cnnspec import published

from ..twins import build_pair, options_from_checkpoint
from ..weights.copying import transfer_weights
from ..weights.randomise import randomise_keras, randomise_torch
from .compare import DEFAULT_ATOL, DEFAULT_RTOL, Report, compare
from .features import compare_features

DIRECTIONS = ("torch2keras", "keras2torch", "both")


@dataclass
class CheckResult:
    model: str
    input_shape: tuple[int, ...]
    reports: list[Report] = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    onnx: OnnxResult | None = None  # noqa: F821
    deploy: DeployResult | None = None  # noqa: F821  (--targets: one row per target and framework)

    @property
    def passed(self) -> bool:
        return (
            bool(self.reports)
            and all(r.passed for r in self.reports)
            and (self.onnx is None or self.onnx.passed)
            and (self.deploy is None or self.deploy.passed)
        )

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "passed": self.passed,
            "timings_s": self.timings,
            "reports": [r.to_dict() for r in self.reports],
            "onnx": self.onnx.to_dict() if self.onnx is not None else None,
            **({"deploy": self.deploy.to_dict()} if self.deploy is not None else {}),
        }


def check(
    name: str,
    batch: int = 2,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    direction: str = "both",
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    layers: bool = False,
    weights=None,
    onnx: bool = False,
    onnx_dir: str | None = None,
    options: dict | None = None,
    features: bool = False,
    targets: list[str] | None = None,
    quantize: str | None = None,
) -> CheckResult:
    """Seeded random weights (random BatchNorm statistics too) or ``weights`` (a torch checkpoint, or
    a published weights name such as ``IMAGENET1K_V1``, fetched through torch.hub's cache),
    transferred torch -> keras and/or keras -> torch, then compared on a seeded random input.
    With ``onnx=True`` both models are also exported and run in onnxruntime (four-way), on a batch
    of another size than the export's, so the dynamic batch axis is proven too. ``options`` are spec
    options (``num_classes=10``; ``image_size=32`` builds a small ViT). With ``features=True`` each
    direction also compares the feature pyramids level by level (:mod:`.features`). ``targets``
    (``["litert", "pt2"]``...) exports both models to each deployment target once they agree and runs
    each artifact in its own runtime against the torch model (:mod:`parity.deploy`); ``quantize``
    (``"float16"``, ``"dynamic-int8"``) adds each target's variant of that mode, judged on its own."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, received {direction!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an int >= 1 (an empty batch compares nothing), received batch={batch!r}")
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)  # one side: square, as torchvision's transforms take it
    if not (rtol >= 0 and atol >= 0):
        raise ValueError(f"rtol and atol must be >= 0, received rtol={rtol!r}, atol={atol!r}")
    if isinstance(size, (list, tuple)) and len(size) == 2:
        size = (int(size[0]), int(size[1]))
    user_options = cnnspec.options_for_size(name, size, dict(options or {}))
    if size is not None:  # too small: one line naming the minimum, before anything is built
        cnnspec.analyse(cnnspec.get(name, **user_options), tuple(size), include_aux=False)
    timings = {}
    start = time.perf_counter()
    if onnx:  # its imports run beside the builds below (~6 s of a cold check)
        from ..onnx.export import prestart_keras_export

        prestart_keras_export()
    options = {}
    if weights is not None and published.is_weights_name(weights):  # published weights: fetched, options from the entry
        from ..fetch import fetch

        fetched = fetch(name, weights, framework="torch")
        weights, options = fetched.torch_path, published.fixed_options(fetched.entry)
    elif weights is not None:
        options = options_from_checkpoint(name, weights)
    options = {**user_options, **options}
    # every Keras weight is assigned below (transferred or seeded): the build draws none
    torch_model, keras_model = build_pair(name, size, weights=weights, weights_follow=True, **options)
    spec = torch_model.spec
    h, w = size or spec.input_size[1:]
    timings["build"] = round(time.perf_counter() - start, 3)
    inputs = np.random.default_rng(seed).standard_normal((batch, spec.input_size[0], h, w)).astype(np.float32)
    result = CheckResult(name, tuple(inputs.shape), timings=timings)
    workdir, keras_export = None, None

    def start_keras_export():  # as soon as the Keras weights are final: it runs beside the comparisons
        nonlocal workdir, keras_export
        if onnx:
            from ..onnx.export import start_export_keras
            from ..onnx.fourway import onnx_paths

            workdir = onnx_dir or tempfile.mkdtemp(prefix="parity_onnx_")
            keras_export = start_export_keras(keras_model, onnx_paths(name, workdir)["keras"])

    try:
        if direction in ("torch2keras", "both"):
            t0 = time.perf_counter()
            if weights is None:
                randomise_torch(torch_model, seed)
            transfer_weights(torch_model, keras_model)
            if direction == "torch2keras":
                start_keras_export()
            result.reports.append(compare(torch_model, keras_model, inputs, layers, rtol, atol, label="torch -> keras"))
            if features:
                result.reports.append(compare_features(torch_model, keras_model, inputs, rtol=rtol, atol=atol))
            timings["torch2keras"] = round(time.perf_counter() - t0, 3)
        if direction in ("keras2torch", "both"):
            t0 = time.perf_counter()
            if weights is None:
                randomise_keras(keras_model, seed + 1)
            else:
                transfer_weights(torch_model, keras_model)  # the checkpoint's values, then back into a fresh model
                randomise_torch(torch_model, seed + 1)
            start_keras_export()
            transfer_weights(keras_model, torch_model)
            result.reports.append(compare(torch_model, keras_model, inputs, layers, rtol, atol, label="keras -> torch"))
            if features:
                result.reports.append(
                    compare_features(
                        torch_model, keras_model, inputs, rtol=rtol, atol=atol, label="keras -> torch features"
                    )
                )
            timings["keras2torch"] = round(time.perf_counter() - t0, 3)
        if onnx:
            from ..onnx.export import EXPORT_BATCH
            from ..onnx.fourway import onnx_check

            t0 = time.perf_counter()
            onnx_batch = batch if batch != EXPORT_BATCH else EXPORT_BATCH + 1
            onnx_inputs = (
                np.random.default_rng(seed + 2).standard_normal((onnx_batch,) + inputs.shape[1:]).astype(np.float32)
            )
            result.onnx = onnx_check(
                torch_model,
                keras_model,
                onnx_inputs,
                workdir=workdir,
                rtol=rtol,
                atol=atol,
                keep=True,
                keras_export=keras_export,
            )
            timings["onnx"] = round(time.perf_counter() - t0, 3)
        if targets:
            from ..deploy.check import deploy_check

            t0 = time.perf_counter()
            result.deploy = deploy_check(
                torch_model, keras_model, targets, inputs, rtol, atol, size=size, quantize=quantize
            )
            timings["deploy"] = round(time.perf_counter() - t0, 3)
    finally:
        if keras_export is not None:
            keras_export.cancel()  # a no-op once it finished; after an error, no orphan child
        if workdir is not None and onnx_dir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    timings["total"] = round(time.perf_counter() - start, 3)
    return result
