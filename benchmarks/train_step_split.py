"""Where a training step goes, torch against Keras on tensorflow: the same model, batch and input.

    python -m benchmarks.train_step_split     # ~4 min on 2 cores; benchmarks/results/train_step_split.{json,md}

The fine-tune CLIs train resnet18 on 32-px digits at 3.2-3.8 s an epoch in torch and 6.2-7.8 s with
Keras on tensorflow (``benchmarks/keras_loop.py``). Both loops cost about what a plain step costs,
so the gap is in the step. This splits one step of each framework, in one process, interleaved:

* ``forward``: the model in training mode (BatchNorm on batch statistics), the autograd graph kept;
* ``forward + backward``: the loss's gradients for every trainable weight;
* ``step``: the same plus the optimizer's update (torch's AdamW, fused as the CLI's; keras_impl's
  TorchAdam, torch's rule, inside the same ``tf.function``); beside them, Keras'
  ``train_on_batch`` of a compiled copy (the same step as ``fit`` runs it, with its loss tracker
  and accuracy metric): what Keras' own step machinery adds;
* the convolutions alone: every convolution of the model, at the input shape it receives in the
  step (recorded by hooks), as a single op padded as each implementation pads it (keras_impl:
  'SAME' at stride 1, zero padding then 'VALID' otherwise): forward, and forward + both gradients
  (input and filter). Summed over the model, they say how much of each framework's step is
  convolution.

Contenders of a row run interleaved, in rotating order (``benchmarks.measure.interleaved``), so a
slow minute hits both. Milliseconds are medians. The CPU is named.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import torch  # before TensorFlow: see README, "Pitfall: import order"

from .measure import cpu_name, interleaved

RESULTS = Path(__file__).with_name("results")


def _channels(model_name: str) -> int:
    import cnnspec

    return cnnspec.get(model_name).input_size[0]


def _torch_parts(model_name: str, size: int, batch: int, classes: int):
    import torch_impl

    torch.manual_seed(0)
    model = torch_impl.get_model(model_name, num_classes=classes).train()
    x = torch.randn(batch, _channels(model_name), size, size)
    y = torch.randint(0, classes, (batch,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()

    def forward():
        return model(x)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()

    def step():
        forward_backward()
        optimizer.step()

    return model, x, {"forward": forward, "forward + backward": forward_backward, "step": step}


def _keras_parts(model_name: str, size: int, batch: int, classes: int):
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_impl
    from keras_impl.optimizers import TorchAdam

    keras.utils.set_random_seed(0)
    shape = (size, size, _channels(model_name))
    model = keras_impl.get_model(model_name, classes=classes, input_shape=shape, classifier_activation=None)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, *shape)).astype("float32"))
    y = tf.constant(rng.integers(0, classes, batch).astype("int32"))
    optimizer = TorchAdam(1e-3, weight_decay=0.05, decoupled=True)
    optimizer.build(model.trainable_variables)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def forward():
        return model(x, training=True)

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)

    fit_model = keras_impl.get_model(model_name, classes=classes, input_shape=shape, classifier_activation=None)
    fit_model.compile(optimizer=TorchAdam(1e-3, weight_decay=0.05, decoupled=True), loss=loss_fn, metrics=["accuracy"])

    def train_on_batch():
        return fit_model.train_on_batch(x, y)

    return {"forward": forward, "forward + backward": forward_backward, "step": step}, train_on_batch


def conv_shapes(model: torch.nn.Module, x: torch.Tensor) -> list[dict]:
    """Every Conv2d of ``model`` with the input shape it receives for ``x``, equal ones counted."""
    seen: dict[tuple, dict] = {}

    def hook(module, args, _output):
        key = (tuple(args[0].shape), module.out_channels, module.kernel_size, module.stride, module.padding)
        key += (module.groups,)
        seen.setdefault(key, {"count": 0})["count"] += 1

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return [
        {"input": list(k[0]), "out": k[1], "kernel": list(k[2]), "stride": list(k[3]), "padding": list(k[4])}
        | {"groups": k[5], **v}
        for k, v in seen.items()
    ]


def _conv_pair(shape: dict) -> dict:
    """One convolution as torch and tensorflow run it: forward, and forward + both gradients."""
    import numpy as np
    import tensorflow as tf

    n, c, h, w = shape["input"]
    kh, kw = shape["kernel"]
    rng = np.random.default_rng(0)
    xt = torch.from_numpy(rng.standard_normal((n, c, h, w)).astype("float32")).requires_grad_()
    wt = torch.from_numpy(rng.standard_normal((shape["out"], c // shape["groups"], kh, kw)).astype("float32"))
    wt.requires_grad_()
    conv = dict(stride=shape["stride"], padding=shape["padding"], groups=shape["groups"])

    def torch_forward():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, wt, **conv)

    def torch_both():
        out = torch.nn.functional.conv2d(xt, wt, **conv)
        return torch.autograd.grad(out.sum(), (xt, wt))

    if shape["groups"] != 1:
        raise NotImplementedError("grouped convolutions are not split here")
    xk = tf.Variable(np.transpose(xt.detach().numpy(), (0, 2, 3, 1)))
    wk = tf.Variable(np.transpose(wt.detach().numpy(), (2, 3, 1, 0)))
    ph, pw = shape["padding"]
    strides = [1, *shape["stride"], 1]
    # as keras_impl's builder pads: 'SAME' at stride 1 with an odd kernel, else zero padding + 'VALID'
    same = shape["stride"] == [1, 1] and kh % 2 and kw % 2 and (ph, pw) == (kh // 2, kw // 2)

    def tf_conv():
        x = xk if same or not (ph or pw) else tf.pad(xk, [[0, 0], [ph, ph], [pw, pw], [0, 0]])
        return tf.nn.conv2d(x, wk, strides, "SAME" if same else "VALID")

    @tf.function
    def tf_forward():
        return tf_conv()

    @tf.function
    def tf_both():
        with tf.GradientTape() as tape:
            out = tf.reduce_sum(tf_conv())
        return tape.gradient(out, [xk, wk])

    return {
        "torch forward": torch_forward,
        "tensorflow forward": tf_forward,
        "torch forward + grads": torch_both,
        "tensorflow forward + grads": tf_both,
    }


def _ms(timings) -> dict[str, float]:
    return {name: round(t.median * 1000, 3) for name, t in timings.items()}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="resnet18")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--out", type=Path, default=RESULTS / "train_step_split")
    args = p.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)

    model, x, torch_parts = _torch_parts(args.model, args.size, args.batch, args.classes)
    keras_parts, train_on_batch = _keras_parts(args.model, args.size, args.batch, args.classes)
    steps = {}
    for part in torch_parts:
        print(f"timing {part} ...", flush=True)
        contenders = {"torch": torch_parts[part], "tensorflow": keras_parts[part]}
        if part == "step":
            contenders["tensorflow train_on_batch"] = train_on_batch
        steps[part] = _ms(interleaved(contenders, args.rounds, target_s=3.0))
    convs = conv_shapes(model, x)
    for i, shape in enumerate(convs):
        print(f"timing convolution {i + 1}/{len(convs)}: {shape['input']} -> {shape['out']} ...", flush=True)
        shape["ms"] = _ms(interleaved(_conv_pair(shape), args.rounds, target_s=1.0))
    totals = {
        name: round(sum(s["ms"][name] * s["count"] for s in convs), 2)
        for name in ("torch forward", "tensorflow forward", "torch forward + grads", "tensorflow forward + grads")
    }
    result = {
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "model": args.model,
        "size": args.size,
        "batch": args.batch,
        "step_ms": steps,
        "convolutions": convs,
        "convolution_totals_ms": totals,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    md = _markdown(result)
    args.out.with_suffix(".md").write_text(md)
    print(md)
    return result


def _markdown(r: dict) -> str:
    steps, totals = r["step_ms"], r["convolution_totals_ms"]
    lines = [
        f"{r['model']} at {r['size']}x{r['size']}, batch {r['batch']}, one training step; {r['cpu']}, "
        f"{r['threads']} threads; medians, interleaved. ms:",
        "",
        "| part | torch | keras on tensorflow | tensorflow / torch |",
        "|---|---|---|---|",
    ]
    for part, ms in steps.items():
        lines.append(f"| {part} | {ms['torch']} | {ms['tensorflow']} | {ms['tensorflow'] / ms['torch']:.2f} |")
        if "tensorflow train_on_batch" in ms:
            tob = ms["tensorflow train_on_batch"]
            lines.append(f"| step, Keras' train_on_batch | | {tob} | {tob / ms['torch']:.2f} |")
    fwd, both = ("torch forward", "tensorflow forward"), ("torch forward + grads", "tensorflow forward + grads")
    for label, (t, k) in (("convolutions alone, forward", fwd), ("convolutions alone, forward + grads", both)):
        lines.append(f"| {label} | {totals[t]} | {totals[k]} | {totals[k] / totals[t]:.2f} |")
    lines += [
        "",
        "Each convolution (count: how many in the model), forward / forward + both gradients, ms:",
        "",
        "| input (N, C, H, W) | out | kernel | stride | count | torch | tensorflow |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in r["convolutions"]:
        ms = s["ms"]
        lines.append(
            f"| {s['input']} | {s['out']} | {s['kernel'][0]}x{s['kernel'][1]} | {s['stride'][0]} | {s['count']} "
            f"| {ms['torch forward']} / {ms['torch forward + grads']} "
            f"| {ms['tensorflow forward']} / {ms['tensorflow forward + grads']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
