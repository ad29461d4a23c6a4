"""Child process of :func:`parity.deploy.keras_export.export_keras`; runs with ``KERAS_BACKEND=tensorflow``.

    python parity/deploy/keras_child.py < JOB_JSON_LINE
    stdin: {"config": CONFIG_JSON, "weights": WEIGHTS_SAFETENSORS,
               "exports": [{"format": "litert", "out": TEMP_PATH, "options": {...}}, ...]}

Run by path (like :mod:`parity.onnx.keras_child`), so it imports keras_impl's layers and TensorFlow
but not parity's package. Rebuilds the functional model from its config, loads the weights and runs
Keras' own ``model.export(path, format=...)`` once per job entry ("litert", "tf_saved_model",
"openvino"): those three go through TensorFlow (LiteRT's converter, the SavedModel writer,
``openvino.convert_model`` of a ``tf.function``), so this child needs the TensorFlow backend whatever
the caller's. The parent renames each temp output onto its target. Prints one JSON line: seconds per
format and this process's peak memory. ``options``: the TFLite converter's settings of a quantized
LiteRT variant, named as strings (``"DEFAULT"``, ``"float16"``: see parity.deploy.quantize).
"""

import json
import os
import resource
import sys
import time

STARTED = time.perf_counter()
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

from cnnbase import startup_lines  # noqa: E402  (framework-free)

startup_lines.install()


def converter_options(options: dict) -> dict:
    """The TFLiteConverter settings named in ``options`` as TensorFlow's objects."""
    import tensorflow as tf

    out = {}
    if "optimizations" in options:
        out["optimizations"] = [getattr(tf.lite.Optimize, o) for o in options["optimizations"]]
    if "target_spec" in options:
        types = options["target_spec"].get("supported_types", [])
        out["target_spec"] = {"supported_types": [getattr(tf, t) for t in types]}
    return out


def main(argv) -> int:
    job = json.loads(sys.stdin.readline())
    for unused in ("jax",):
        sys.modules.setdefault(unused, None)
    import keras

    if keras.backend.backend() != "tensorflow":
        print(f"needs KERAS_BACKEND=tensorflow, running on {keras.backend.backend()}", file=sys.stderr)
        return 2
    import keras_impl.layers  # noqa: F401  (registers the custom layers)
    from keras_impl.weights import load_variables

    seconds = {"imports": round(time.perf_counter() - STARTED, 2)}
    with open(job["config"]) as f:
        model = keras.models.model_from_json(f.read())
    load_variables(model, job["weights"])
    for entry in job["exports"]:
        t0 = time.perf_counter()
        options = converter_options(entry.get("options", {})) if entry["format"] == "litert" else {}
        model.export(entry["out"], format=entry["format"], verbose=False, **options)
        seconds[entry["format"]] = round(time.perf_counter() - t0, 2)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": round(peak, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    status = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
