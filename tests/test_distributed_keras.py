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
import sys
from pathlib import Path
import numpy as np
import keras
import keras_impl.finetune as ft
sys.path.insert(0, "tests")
from image_folders import write_colours

root = write_colours(Path(sys.argv[1]), train=8, val=4, noise=60.0)
assert len(keras.distribution.list_devices()) == 2, keras.distribution.list_devices()
common = dict(data=str(root), model="lenet5", mode="fine-tune", augment=False, epochs=2, lr=3e-3, progress=False)
one = ft.finetune(**common, batch_size=8, out=str(root / "one"))
two = ft.finetune(**common, batch_size=4, distribute=True, out=str(root / "two"))
big = ft.finetune(**common, batch_size=8, distribute=True, out=str(root / "big"))  # twin: 16 per step
weights = {k: ft.load_checkpoint(root / k)[0].get_weights() for k in ("one", "two", "big")}
start = ft.build_model("lenet5", 3, size=32).get_weights()
assert any(not np.array_equal(a, b) for a, b in zip(weights["one"], start)), "it did not train"
for a, b in zip(weights["one"], weights["two"]):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
assert not all(np.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(weights["one"], weights["big"]))
assert "DataParallel over 2 devices" in two.device
print("ok", one.history[-1]["val_acc"], two.history[-1]["val_acc"])
"""


def test_data_parallel_on_two_devices_equals_one_with_the_doubled_batch(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "CUDA_VISIBLE_DEVICES": "", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "data")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-4000:]


def test_distribute_on_another_backend_is_one_clear_error(tmp_path):
    import keras

    if keras.backend.backend() == "jax":
        pytest.skip("this process runs Keras on jax")
    import keras_impl.finetune as ft

    with pytest.raises(ValueError, match="implements on the jax backend only; received the .* backend: set KERAS_BACKEND=jax"):
        ft.finetune(model="lenet5", epochs=1, distribute=True, progress=False, out=str(tmp_path))
