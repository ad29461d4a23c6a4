"""Child process of :func:`parity.onnx_export.export_keras`; runs with ``KERAS_BACKEND=torch``.

    python -m parity.keras_onnx_child CONFIG_JSON WEIGHTS_H5 OUT_ONNX [--opset N]

Rebuilds the functional model from its config (keras_impl's layers are registered by importing
it), loads the weights and exports the torch module Keras builds, with a dynamic batch axis.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import warnings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("weights")
    parser.add_argument("out")
    parser.add_argument("--opset", type=int, default=18)
    args = parser.parse_args(argv)

    import keras

    if keras.backend.backend() != "torch":
        print(f"needs KERAS_BACKEND=torch, running on {keras.backend.backend()}", file=sys.stderr)
        return 2
    import numpy as np
    import torch

    import keras_impl  # noqa: F401  (registers the custom layers)

    from .onnx_export import EXPORT_BATCH, INPUT_NAME, OUTPUT_NAME

    torch.set_grad_enabled(False)
    with open(args.config) as f:
        model = keras.models.model_from_json(f.read())
    model.load_weights(args.weights)

    class Logits(torch.nn.Module):
        """One tensor in, the first output (logits) out, in inference mode."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            out = self.inner(x, training=False)
            return out[0] if isinstance(out, (list, tuple)) else out

    shape = [EXPORT_BATCH if d is None else d for d in model.inputs[0].shape]
    if any(d is None for d in model.inputs[0].shape[1:]):
        print("the keras model needs a fixed input size (input_shape=(H, W, C)) for export", file=sys.stderr)
        return 2
    example = (torch.from_numpy(np.zeros(shape, dtype="float32")),)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            Logits(model).eval(), example, dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},), opset_version=args.opset, optimize=True, verbose=False,
        )
    program.save(args.out)
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
