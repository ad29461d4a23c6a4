"""Deployment targets beyond ONNX, exported and verified like it: LiteRT, TensorFlow SavedModel,
OpenVINO and torch.export's .pt2 (``targets``: the table, one exporter per framework, one runner per
target; the Keras/TensorFlow exports in a child process, ``keras_child``, run by path)."""
