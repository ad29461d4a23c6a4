"""Child process of :func:`parity.onnx.export.start_export_keras`; runs with ``KERAS_BACKEND=torch``.

    python parity/onnx/keras_child.py [--exporter torchscript|dynamo]
    stdin, line 1: {"config": CONFIG_JSON, "weights": WEIGHTS_SAFETENSORS, "out": OUT_ONNX, "opset": 18,
                    "batch": 2, ...}
    stdin, line 2: any line, once the weights file is complete

Run by path, so that it imports keras_impl and torch but not parity's package (torchvision, the
comparison modules). It imports before it knows its job, so a parent can start it early (a spare,
see ``parity.onnx.export.prestart_keras_export``) and hide those ~6 s. Rebuilds the functional model
from its config (keras_impl's layers are registered by importing it) with zero initializers, loads
the weights and exports the torch module Keras builds, with a dynamic batch axis. Prints one JSON
line (its peak memory, seconds per phase). End of input before a job: exits 0 quietly (an unused spare).
"""

import argparse
import json
import os
import resource
import sys
import time
import warnings

STARTED = time.perf_counter()

HERE = os.path.dirname(os.path.abspath(__file__))
# A script's folder leads sys.path; the modules beside this one (export.py, fourway.py...) must not shadow others.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

from cnnbase import startup_lines  # noqa: E402  (framework-free)

startup_lines.install()  # should anything load TensorFlow here, its start-up lines stay out of the error text


def traceable_layer_norms(config):
    """The config with Keras' LayerNormalization swapped for :func:`traceable_layer_norm_class`'s:
    the TorchScript tracer refuses Keras' own on the torch backend (it builds a shape list from
    traced sizes), and torch.export, the fallback, took ViT-B/16's export from 4.4 s to 32 s."""
    if isinstance(config, dict):
        if config.get("class_name") == "LayerNormalization" and config.get("module") == "keras.layers":
            config = {
                **config,
                "class_name": "TraceableLayerNormalization",
                "module": None,
                "registered_name": "parity_export>TraceableLayerNormalization",
            }
        return {k: traceable_layer_norms(v) for k, v in config.items()}
    if isinstance(config, list):
        return [traceable_layer_norms(v) for v in config]
    return config


def traceable_layer_norm_class():
    """Keras' LayerNormalization (same weights, same config) computed by torch's layer_norm when it
    normalises the last axis with scale and shift: one ONNX LayerNormalization node."""
    import keras
    import torch

    @keras.saving.register_keras_serializable(package="parity_export")
    class TraceableLayerNormalization(keras.layers.LayerNormalization):
        def call(self, inputs):
            if self.scale and self.center and not self.rms_scaling and tuple(self.gamma.shape) == (inputs.shape[-1],):
                return torch.nn.functional.layer_norm(
                    inputs, tuple(self.gamma.shape), self.gamma.value, self.beta.value, self.epsilon
                )
            return super().call(inputs)

    return TraceableLayerNormalization


def export_torchscript(module, example, args) -> None:
    """torch.onnx's TorchScript exporter: it traces Keras' torch-backend layers once, 5x faster
    than torch.export's passes (ResNet50 5.3 s against 28 s, ResNet152 ~15 s against 83 s)."""
    import torch

    names = {args.input_name: {0: "batch"}, args.output_name: {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            args.out,
            dynamo=False,
            input_names=[args.input_name],
            output_names=[args.output_name],
            dynamic_axes=names,
            opset_version=args.opset,
            do_constant_folding=True,
        )


def export_dynamo(module, example, args) -> None:
    """torch.onnx's torch.export-based exporter (the one the torch side uses)."""
    import torch

    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            example,
            dynamo=True,
            input_names=[args.input_name],
            output_names=[args.output_name],
            dynamic_shapes=({0: batch},),
            opset_version=args.opset,
            optimize=True,
            verbose=False,
        )
    program.save(args.out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--exporter",
        choices=["torchscript", "dynamo"],
        default="torchscript",
        help="torch.onnx's exporter (torchscript falls back to dynamo when it fails)",
    )
    args = parser.parse_args(argv)

    for unused in ("sklearn", "jax"):  # Keras imports them when installed (1.5 s); the torch backend needs neither
        sys.modules.setdefault(unused, None)
    import keras

    if keras.backend.backend() != "torch":
        print(f"needs KERAS_BACKEND=torch, running on {keras.backend.backend()}", file=sys.stderr)
        return 2
    import torch

    import keras_impl.layers  # noqa: F401  (registers the custom layers; keras_impl itself loads lazily)
    from keras_impl.weights import load_variables, without_initializers

    phases = {"imports": time.perf_counter() - STARTED}
    torch.set_grad_enabled(False)
    line = sys.stdin.readline()
    if not line:  # a spare the parent did not need
        return 0
    started = time.perf_counter()  # the job's clock: a spare may have waited long for it
    job = {"opset": 18, "batch": 2, "input_name": "input", "output_name": "logits", **json.loads(line)}
    for key, value in job.items():
        setattr(args, key, value)
    traceable_layer_norm_class()
    with open(args.config) as f:
        model = keras.models.model_from_json(
            json.dumps(traceable_layer_norms(without_initializers(json.loads(f.read()))))
        )
    if not sys.stdin.readline():  # the parent writes the weights meanwhile; a line says they are complete
        print("the parent closed before the weights were written", file=sys.stderr)
        return 2
    phases["build_and_wait"] = time.perf_counter() - started
    load_variables(model, args.weights)
    phases["read_weights"] = time.perf_counter() - started - phases["build_and_wait"]

    class Logits(torch.nn.Module):
        """One tensor in, the first output (logits) out, in inference mode."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            out = self.inner(x, training=False)
            return out[0] if isinstance(out, (list, tuple)) else out

    if any(d is None for d in model.inputs[0].shape[1:]):
        print("the keras model needs a fixed input size (input_shape=(H, W, C)) for export", file=sys.stderr)
        return 2
    example = (torch.zeros([args.batch, *model.inputs[0].shape[1:]]),)
    module = Logits(model).eval()
    exporter = args.exporter
    if exporter == "torchscript":
        try:
            export_torchscript(module, example, args)
        except Exception as err:  # removed from a future torch, or a layer it cannot trace: torch.export
            print(f"torchscript export failed ({type(err).__name__}: {err}); using torch.export", file=sys.stderr)
            exporter = "dynamo"
    if exporter == "dynamo":
        export_dynamo(module, example, args)
    phases["export_and_save"] = time.perf_counter() - started - phases["build_and_wait"] - phases["read_weights"]
    seconds = {k: round(v, 2) for k, v in phases.items()}
    print(
        json.dumps(
            {
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "seconds": seconds,
                "exporter": exporter,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # the file is written and closed: skip tearing down torch and Keras (~2 s)
