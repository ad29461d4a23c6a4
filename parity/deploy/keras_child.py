"""Child process of :func:`parity.deploy.keras_export.export_keras`; runs with ``KERAS_BACKEND=tensorflow``.

    python parity/deploy/keras_child.py < JOB_JSON_LINE
    stdin: {"config": CONFIG_JSON, "weights": WEIGHTS_SAFETENSORS,
               "exports": [{"format": "litert", "out": TEMP_PATH, "options": {...}}, ...]}

Run by path (like :mod:`parity.onnx.keras_child`), so it imports keras_impl's layers and TensorFlow
but not parity's package. Rebuilds the functional model from its config, loads the weights and
traces it once: Keras' own ``model.export(path, format="tf_saved_model")`` writes a SavedModel (the
job's ``tf_saved_model`` output, or a temp folder), and the other formats convert that folder:
"litert" as Keras' ``model.export(format="litert")`` does (it writes the same SavedModel to a temp
folder and runs ``TFLiteConverter.from_saved_model`` with TFLite builtins plus select TF ops and
resource variables: :func:`litert_bytes`), "openvino" with ``openvino.convert_model`` of the folder
(Keras' openvino export traces a ``tf.function`` of its own; the same graph, named as Keras names
its input). Each of Keras' exports traces and writes the model again: EfficientNet-B0 at 32 px took
23 s for the three, 7 s of it each trace-and-write. All three go through TensorFlow, so this child
needs the TensorFlow backend whatever the caller's. The parent renames each temp output onto its
target. Prints one JSON line: seconds per format (the trace counted once: in the SavedModel's, or
else in the first format's) and this process's peak memory. ``options``: the TFLite converter's settings of a
quantized LiteRT variant, named as strings (``"DEFAULT"``, ``"float16"``: see parity.deploy.quantize).
"""

import json
import os
import resource
import sys
import tempfile
import time

STARTED = time.perf_counter()
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

from cnnbase import startup_lines  # noqa: E402  (framework-free)

startup_lines.install()


def litert_bytes(saved_model: str, options: dict) -> bytes:
    """The LiteRT flatbuffer of ``saved_model`` with the converter settings Keras' litert export
    uses, plus ``options`` (a quantized variant's, named as strings) as TensorFlow's objects."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    converter.experimental_enable_resource_variables = True
    if "optimizations" in options:
        converter.optimizations = [getattr(tf.lite.Optimize, o) for o in options["optimizations"]]
    if "target_spec" in options:
        converter.target_spec.supported_types = [getattr(tf, t) for t in options["target_spec"]["supported_types"]]
    return converter.convert()


def write_openvino(saved_model: str, out: str, input_names: list[str]) -> None:
    """OpenVINO IR (``out``: the .xml, its .bin beside it) of ``saved_model``, inputs named as Keras names them."""
    import openvino as ov

    ov_model = ov.convert_model(saved_model)
    for ov_input, name in zip(ov_model.inputs, input_names):
        ov_input.get_node().set_friendly_name(name)
        ov_input.tensor.set_names({name})
    ov.serialize(ov_model, out)


def main(argv) -> int:
    job = json.loads(sys.stdin.readline())
    for unused in ("jax",):
        sys.modules.setdefault(unused, None)
    import keras

    if keras.backend.backend() != "tensorflow":
        print(f"needs KERAS_BACKEND=tensorflow, running on {keras.backend.backend()}", file=sys.stderr)
        return 2
    import keras_impl.layers  # noqa: F401  (registers the custom layers)
    from keras_impl.weights import load_variables, without_initializers

    seconds = {"imports": round(time.perf_counter() - STARTED, 2)}
    with open(job["config"]) as f:
        model = keras.models.model_from_json(json.dumps(without_initializers(json.loads(f.read()))))
    load_variables(model, job["weights"])
    entries = {entry["format"]: entry for entry in job["exports"]}
    with tempfile.TemporaryDirectory(prefix="saved_model_", dir=os.path.dirname(job["config"])) as work:
        saved = entries["tf_saved_model"]["out"] if "tf_saved_model" in entries else os.path.join(work, "saved_model")
        t0 = time.perf_counter()
        model.export(saved, format="tf_saved_model", verbose=False)
        spent = {"tf_saved_model": time.perf_counter() - t0}
        for name, entry in entries.items():
            t0 = time.perf_counter()
            if name == "litert":
                with open(entry["out"], "wb") as f:
                    f.write(litert_bytes(saved, entry.get("options", {})))
            elif name == "openvino":
                write_openvino(saved, entry["out"], [t.name for t in model.inputs])
            elif name != "tf_saved_model":
                raise ValueError(f"unknown format {name!r}")
            spent.setdefault(name, time.perf_counter() - t0)
    if "tf_saved_model" not in entries:  # the first format counts the trace
        spent[next(iter(entries))] += spent.pop("tf_saved_model")
    seconds.update({name: round(s, 2) for name, s in spent.items()})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": round(peak, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    status = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
