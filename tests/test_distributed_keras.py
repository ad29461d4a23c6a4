"""keras.distribution.DataParallel on two host devices (jax, XLA's forced host platform device
count) trains like one device with the doubled batch; other backends get one clear error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jax")
ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json
import sys
from pathlib import Path
import numpy as np
import keras
import keras_impl.finetune as ft
from keras_impl.optimizers import TorchAdam
sys.path.insert(0, "tests")
from image_folders import write_colours
from run_records import check_run_record

build = ft.tuning_model


def run(**kwargs):
    # ft.finetune and the weights it started from (its seeded build, caught as the run makes it)
    # and ended with, by variable path
    start = {}

    def spy(*args, **kw):
        model = build(*args, **kw)
        start.update({v.path: np.array(v.numpy()) for v in model.weights})
        return model

    ft.tuning_model = spy
    try:
        result = ft.finetune(**kwargs)
    finally:
        ft.tuning_model = build
    end = ft.load_checkpoint(Path(kwargs["out"]))[0]
    return result, start, {v.path: np.array(v.numpy()) for v in end.weights}


def changed(start, end):
    assert start.keys() == end.keys()
    return {k for k in start if not np.array_equal(start[k], end[k])}


root = write_colours(Path(sys.argv[1]), train=8, val=4, noise=60.0)
assert len(keras.distribution.list_devices()) == 2, keras.distribution.list_devices()
common = dict(data=str(root), model="lenet5", mode="fine-tune", augment=False, epochs=2, lr=3e-3, progress=False)
one, start, weights_one = run(**common, batch_size=8, out=str(root / "one"))
two, _, weights_two = run(**common, batch_size=4, distribute=True, out=str(root / "two"))
big, _, weights_big = run(**common, batch_size=8, distribute=True, out=str(root / "big"))  # twin: 16 per step
assert changed(start, weights_one) == set(start), "it did not train"  # every weight moved from the run's own start
for k in weights_one:
    np.testing.assert_allclose(weights_two[k], weights_one[k], rtol=1e-5, atol=1e-6)
assert not all(np.allclose(weights_one[k], weights_big[k], rtol=1e-5, atol=1e-6) for k in weights_one)
assert "DataParallel over 2 devices" in two.device
# history.json's "run": two devices of DataParallel for the distributed run, one process for the twin
run_one, run_two = (json.loads((root / d / "history.json").read_text())["run"] for d in ("one", "two"))
check_run_record(run_two, "keras", world_size=2, backend="jax DataParallel", batch=4, unit="device")
check_run_record(run_one, "keras", world_size=1, backend=None, batch=8)
# twin of "it trained": a run whose optimizer steps do nothing ends where it started
TorchAdam.update_step = lambda self, gradient, variable, learning_rate: None
_, still_start, still = run(**{**common, "epochs": 1}, batch_size=8, out=str(root / "still"))
assert still_start and changed(still_start, still) == set(), "a run without steps moved"
print("ok", one.history[-1]["val_acc"], two.history[-1]["val_acc"])
"""


def test_data_parallel_on_two_devices_equals_one_with_the_doubled_batch(tmp_path):
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "CUDA_VISIBLE_DEVICES": "",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "data")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-4000:]
    # one header per run (one, two, big, still), each the first thing the run printed
    headers = [line for line in proc.stdout.splitlines() if line.startswith("keras/jax finetune: lenet5, ")]
    assert len(headers) == 4, proc.stdout
    assert "batch 8 per process (8 total), device cpu:0, 1 process; recipe: AdamW lr 0.003" in headers[0]
    assert "batch 4 per device (8 total), device cpu, 2 devices, jax DataParallel; recipe: AdamW" in headers[1]


def test_distribute_on_another_backend_is_one_clear_error(tmp_path):
    import keras

    if keras.backend.backend() == "jax":
        pytest.skip("this process runs Keras on jax")
    import keras_impl.finetune as ft

    with pytest.raises(
        ValueError, match="implements on the jax backend only; received the .* backend: set KERAS_BACKEND=jax"
    ):
        ft.finetune(model="lenet5", epochs=1, distribute=True, progress=False, out=str(tmp_path))
