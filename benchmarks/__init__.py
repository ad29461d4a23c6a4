"""Benchmarks: how fast ours is against the same math elsewhere, and what the fast paths give.

    python -m benchmarks                       # the suite: torch, onnxruntime, Keras on tensorflow and jax
    python -m benchmarks --models resnet50 --batches 8 --keras-backends jax

For alexnet, vgg16, googlenet, resnet18 and resnet50 at 224x224, batch 1 and 8 (64 and 256 on
CUDA), float32 images/s, p50/p90 latency and peak memory of: torch_impl against torchvision (the
same weights; eager, channels_last, torch.compile), keras_impl against keras.applications where it
has the model (tensorflow and jax backends; XLA on and off), onnxruntime on both exports, and the
fast paths (channels_last, torch.compile, bf16 where the hardware has it, onnxruntime) with their
top-1 agreement and relative error against float32 eager. Every row also gets its achieved GFLOP/s
(the spec's MAC count) and their fraction of the same run's sgemm, the machine's practical
ceiling. Writes benchmarks/results/suite.{json,md,png}. Tests never assert timings.

The other scripts here measure one thing each: fine-tuning against a hand-written loop
(finetune_compare.py), ONNX export time and memory per model (onnx_export.py), whether pretraining
helps a small labelled set (transfer_torch.py and transfer_keras.py, one experiment in
transfer_common.py).
"""
