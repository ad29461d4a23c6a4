"""Published weights for both frameworks: download (torch side), convert and verify (Keras side).

``fetch("resnet18")`` puts torchvision's file in torch.hub's cache and its Keras conversion in
Keras' cache, ahead of time (for a cluster, or a machine that will go offline); keras_impl calls
it in a subprocess when a converted file is missing. The conversion is accepted only after the
Keras model, on a seeded probe batch, agrees with the torch model within the parity tolerances;
then the weights and a record of the check are written atomically, the record last.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import cnnspec
from cnnbase.atomic import atomic_path, write_text
from cnnspec.published import ConversionRecord, PublishedWeights, fixed_options

from .comparison.compare import DEFAULT_ATOL, DEFAULT_RTOL, compare
from .weights.copying import transfer_weights

FRAMEWORKS = ("torch", "keras", "both")
PROBE_BATCH = 2
PROBE_SEED = 0


@dataclass
class FetchResult:
    entry: PublishedWeights
    torch_path: Path | None = None
    keras_path: Path | None = None
    record: ConversionRecord | None = None


def fetch(
    model: str, weights: str = "DEFAULT", framework: str = "both", progress: bool = True, force: bool = False
) -> FetchResult:
    """Downloads (hash-checked) and, for Keras, converts and verifies; files already cached are
    reused (``force`` converts again)."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, received {framework!r}")
    entry = cnnspec.published_weights(model, weights)
    from torch_impl import pretrained as torch_pretrained

    result = FetchResult(entry, torch_path=torch_pretrained.download(entry, progress=progress))
    if framework in ("keras", "both"):
        from keras_impl import pretrained as keras_pretrained

        record = None if force else keras_pretrained.read_record(entry)
        if record is None:
            record = convert_to_keras(entry, result.torch_path, progress=progress)
        result.keras_path, result.record = keras_pretrained.converted_path(entry), record
    return result


def convert_to_keras(entry: PublishedWeights, torch_file: Path, progress: bool = True) -> ConversionRecord:
    """torch file -> Keras weights in Keras' cache, kept only if a probe batch agrees."""
    import keras

    import keras_impl
    import torch_impl
    from keras_impl import pretrained as keras_pretrained

    from .twins import keras_factory_options

    start = time.perf_counter()
    options = fixed_options(entry)  # the file's options and classes, no aux heads: both models built alike
    torch_model = torch_impl.get_model(entry.model, weights=torch_file, **options).eval()
    keras_model = keras_impl.get_model(entry.model, classifier_activation=None, **keras_factory_options(options))
    transfer_weights(torch_model, keras_model)
    size = entry.transforms.crop_size
    probe = np.random.default_rng(PROBE_SEED).standard_normal((PROBE_BATCH, 3, size, size)).astype(np.float32)
    report = compare(torch_model, keras_model, probe, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL, label="torch -> keras")
    if not report.passed:
        raise RuntimeError(
            f"{entry.key}: the converted Keras model disagrees with torch on the probe batch "
            f"(max rel {report.output.max_rel:.2e}, top-1 {report.output.top1}); nothing was cached"
        )
    target = keras_pretrained.converted_path(entry)
    with atomic_path(target, suffix=".weights.h5") as tmp:
        keras_model.save_weights(str(tmp))
    import torch

    record = ConversionRecord(
        model=entry.model,
        weights=entry.name,
        source_file=entry.file_name,
        source_url=entry.url,
        source_sha256=keras_pretrained.sha256_of(torch_file),
        keras_file=target.name,
        weights_sha256=keras_pretrained.sha256_of(target),
        probe={
            "shape": list(probe.shape),
            "seed": PROBE_SEED,
            "max_abs": report.output.max_abs,
            "max_rel": report.output.max_rel,
            "top1": report.output.top1,
            "top5": report.output.top5,
            "rtol": DEFAULT_RTOL,
            "atol": DEFAULT_ATOL,
        },
        seconds=round(time.perf_counter() - start, 2),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        versions={"keras": keras.__version__, "backend": keras.backend.backend(), "torch": torch.__version__},
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    write_text(keras_pretrained.record_path(entry), record.to_json())  # last: it marks the file complete
    return record
