"""Deployment targets beyond ONNX, exported and verified like it: LiteRT, TensorFlow SavedModel,
OpenVINO and torch.export's .pt2. One job per module, imports pointing down: ``table`` (which
framework reaches which target, which quantized variants, the one-line refusals) < ``files``
(the export record, atomic folders) < ``quantize`` < ``torch_export`` / ``keras_export`` (its
child, ``keras_child``, run by path) < ``runtimes`` < ``rows`` (the comparison) < ``check``
(export every pair, compare) < ``report`` (the README table from one command's JSON)."""
