"""ONNX: exporting both models (``export``; the Keras side in a child process, ``keras_child``, run
by path), the four-way comparison with onnxruntime (``fourway``) and ``python -m parity export``'s
one file from a model name (``artifact``)."""
