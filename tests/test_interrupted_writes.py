"""A conversion or an export killed mid-write (SIGKILL: no handler runs) leaves the target as it
was: absent, or the previous good file byte for byte. Every writer goes through
cnnbase.atomic (a temp file next to the target, renamed when complete); the deployment targets too:
a file (.pt2) the same way, a folder (a SavedModel) through parity.deploy.files.atomic_dir (a temp
folder beside it, renamed onto it).

And it leaves nothing behind for good: the killed writer's temp file carries its process id, and
the next write of the same target removes the temp files of writers that no longer run (never a
live writer's). The Keras export's child dies with its parent, and the parent's work folder (the
model's weights, in the system's temp folder) is removed by the next export."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnnbase.atomic import process_alive, remove_stale_temp_files, temp_owners, write_text

ENV = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
LINUX_PROC = Path("/proc/self/stat").exists()


def kill_mid_write(cmd, target: Path, env: dict, timeout: float = 300) -> bool:
    """Runs ``cmd`` and SIGKILLs it the moment its temp file for ``target`` holds data (it is being
    written); True when it was killed that way (False: it ended first, and the test cannot tell)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if any(e.name.startswith(f".{target.name}.") and _size(e) > 0 for e in os.scandir(target.parent)):
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True
            time.sleep(0.001)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _size(entry: os.DirEntry) -> int:
    try:
        return entry.stat().st_size
    except FileNotFoundError:
        return 0


def temp_files(folder: Path, target: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if temp_owners(target, p.name) is not None)


def assert_only_the_target(folder: Path, target: Path) -> None:
    """The folder holds the target and nothing else: no temp file of a writer, killed or not."""
    left = sorted(p.name for p in folder.iterdir())
    assert left == [target.name], f"{folder} holds {left}, expected only {target.name}"


def assert_no_work_folder(tmpdir: Path) -> None:
    """No Keras export work folder (keras_onnx_<pid>_..., keras_deploy_<pid>_...) is left in the temp folder."""
    left = sorted(p.name for p in tmpdir.iterdir() if p.name.startswith(("keras_onnx_", "keras_deploy_")))
    assert not left, f"{tmpdir} holds {left}"


def snapshot(target: Path):
    """What ``target`` holds: a file's bytes, a folder's {relative path: bytes}, None when absent."""
    if target.is_dir():
        return {str(p.relative_to(target)): p.read_bytes() for p in sorted(target.rglob("*")) if p.is_file()}
    return target.read_bytes() if target.exists() else None


def kill_and_run_again(cmd, target: Path, tmp_path: Path, monkeypatch) -> bytes:
    """Kills ``cmd`` (a ``python -m parity`` command line) mid-write: the killed writer's temp
    file is left, named after processes that ended. Then runs the same command again here to the
    end: it removes that file, and the folder holds the target alone. Returns what the target held
    right after the kill (None: absent)."""
    import tempfile

    from parity.__main__ import main

    tmpdir = tmp_path / "tmp"  # the system temp folder of both runs (the Keras export's work folder)
    tmpdir.mkdir()
    assert kill_mid_write(cmd, target, {**ENV, "TMPDIR": str(tmpdir)}), (
        "the write finished before its temp file was seen"
    )
    after_kill = snapshot(target)
    left = temp_files(target.parent, target)
    assert left, "the killed writer left no temp file: nothing for the next run to clean"
    owners = [pid for name in left for pid in temp_owners(target, name)]
    deadline = (
        time.monotonic() + 10
    )  # the Keras export child gets its SIGKILL as its parent dies, and ends a moment later
    while any(process_alive(pid) for pid in owners) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(process_alive(pid) for pid in owners), owners
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    assert main(cmd[3:]) == 0  # the same command line, in this process
    assert_only_the_target(target.parent, target)
    assert_no_work_folder(tmpdir)
    return after_kill


@pytest.fixture(scope="module")
def resnet18_checkpoint(tmp_path_factory):
    import torch

    import torch_impl

    path = tmp_path_factory.mktemp("ckpt") / "resnet18.pth"
    torch.save(torch_impl.resnet18().state_dict(), path)
    return path


@pytest.mark.parametrize("previous", [None, b"the previous good file"])
def test_a_conversion_killed_mid_write_leaves_the_target_as_it_was(
    resnet18_checkpoint, tmp_path, monkeypatch, previous
):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "resnet18.weights.h5"
    if previous is not None:
        target.write_bytes(previous)
    cmd = [sys.executable, "-m", "parity", "convert", "--model", "resnet18", str(resnet18_checkpoint), str(target)]
    assert kill_and_run_again(cmd, target, tmp_path, monkeypatch) == previous
    assert target.read_bytes() != previous


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_an_export_killed_mid_write_leaves_the_previous_file(tmp_path, monkeypatch, framework):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "resnet18.onnx"
    target.write_bytes(b"the previous good export")
    cmd = [
        sys.executable,
        "-m",
        "parity",
        "export",
        "resnet18",
        "--framework",
        framework,
        "--out",
        str(target),
        "--size",
        "64",
    ]
    assert kill_and_run_again(cmd, target, tmp_path, monkeypatch) == b"the previous good export"
    assert target.read_bytes() != b"the previous good export"


def deploy_export(name: str, fmt: str, framework: str, target: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "parity",
        "export",
        name,
        "--format",
        fmt,
        "--framework",
        framework,
        "--out",
        str(target),
    ]


def test_a_pt2_export_killed_mid_write_leaves_the_previous_file(tmp_path, monkeypatch):
    """A file target of the deployment exports (torch.export's archive)."""
    out = tmp_path / "out"
    out.mkdir()
    target = out / "lenet5.pt2"
    target.write_bytes(b"the previous good export")
    cmd = deploy_export("lenet5", "pt2", "torch", target)
    assert kill_and_run_again(cmd, target, tmp_path, monkeypatch) == b"the previous good export"
    assert target.read_bytes() != b"the previous good export"


def test_a_saved_model_export_killed_mid_write_leaves_the_previous_folder(tmp_path, monkeypatch):
    """A folder target (Keras' SavedModel, written by the TensorFlow child): the previous folder file
    for file; the killed writers' temp folder and work folder are removed by the next run."""
    previous = {"saved_model.pb": b"the previous good SavedModel"}
    out = tmp_path / "out"
    out.mkdir()
    target = out / "lenet5.saved_model"
    target.mkdir()
    (target / "saved_model.pb").write_bytes(previous["saved_model.pb"])
    cmd = deploy_export("lenet5", "saved_model", "keras", target)
    assert kill_and_run_again(cmd, target, tmp_path, monkeypatch) == previous
    assert (target / "saved_model.pb").read_bytes() != b"the previous good SavedModel"


# ------------------------------------------------------------------------- the clean-up, one rule at a time
def _dead_pid() -> int:
    """The id of a process that has ended and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_are_removed_and_live_ones_kept(tmp_path):
    """Twin of the checks above: a temp file of a live writer (this test's own process) is kept,
    and the folder check then fails; one of an ended writer is removed by the next write."""
    target = tmp_path / "v.onnx"
    live, dead = os.getpid(), _dead_pid()
    names = {
        "dead": f".v.onnx.{dead}.abcdefgh.tmp.onnx",
        "dead_side_file": f".v.onnx.{dead}.ijklmnop.tmp.onnx.data",  # an exporter's external data beside its temp file
        "live": f".v.onnx.{live}.qrstuvwx.tmp.onnx",
        "live_child_of_dead_parent": f".v.onnx.{dead}-{live}.yz012345.tmp.onnx",  # stale only once both ended
        "no_pid": ".v.onnx.abcdefgh.tmp.onnx",  # another naming: not this writer's, kept
        "other_target": f".v.onnx.bak.{dead}.abcdefgh.tmp",  # the temp file of v.onnx.bak
        "user_file": "v.onnx.1234.abcdefgh.tmp",  # not hidden: not a temp file
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    assert temp_owners(target, names["live_child_of_dead_parent"]) == (dead, live)
    assert temp_owners(target, names["other_target"]) is None and temp_owners(target, names["user_file"]) is None
    assert temp_owners(tmp_path / "v.onnx.bak", names["other_target"]) == (dead,)

    write_text(target, "the new file")
    stale = {names["dead"], names["dead_side_file"]}
    assert {p.name for p in tmp_path.iterdir()} == {target.name} | (set(names.values()) - stale)
    with pytest.raises(AssertionError, match=re.escape(names["live"])):
        assert_only_the_target(tmp_path, target)

    # once their writers have ended, the next write removes them too
    for key in ("no_pid", "other_target", "user_file"):  # not this target's temp files: out of the way
        (tmp_path / names[key]).unlink()
    ended = _dead_pid()  # as if the live writer had ended
    (tmp_path / names["live"]).rename(tmp_path / f".v.onnx.{ended}.qrstuvwx.tmp.onnx")
    (tmp_path / names["live_child_of_dead_parent"]).rename(tmp_path / f".v.onnx.{dead}-{ended}.yz012345.tmp.onnx")
    write_text(target, "again")
    assert_only_the_target(tmp_path, target)
    assert target.read_text() == "again"


def test_a_writer_cleans_only_its_own_target(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".a.json.{dead}.abcdefgh.tmp").write_bytes(b"x")
    (tmp_path / f".b.json.{dead}.abcdefgh.tmp").write_bytes(b"x")
    assert [p.name for p in remove_stale_temp_files(tmp_path / "a.json")] == [f".a.json.{dead}.abcdefgh.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".b.json.{dead}.abcdefgh.tmp"]


def test_process_alive():
    assert process_alive(os.getpid())
    assert not process_alive(_dead_pid())
    assert not process_alive(0) and not process_alive(-1)


@pytest.mark.skipif(not LINUX_PROC or not hasattr(os, "waitid"), reason="zombies are told apart through /proc")
def test_a_zombie_counts_as_ended():
    """A writer that exited but was not reaped yet (its parent killed, a container's PID 1 that
    reaps nothing) writes nothing more: its temp file is stale."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped
        assert not process_alive(proc.pid)
    finally:
        proc.wait()


def test_stale_export_work_folders_are_removed(tmp_path, monkeypatch):
    import tempfile

    from parity.onnx import export as onnx_export

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead, live = _dead_pid(), os.getpid()
    for name in (f"keras_onnx_{dead}_abcdefgh", f"keras_onnx_{live}_abcdefgh", "keras_onnx_abcdefgh"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_bytes(b"x")
    assert [p.name for p in onnx_export.remove_stale_work_folders()] == [f"keras_onnx_{dead}_abcdefgh"]
    assert {p.name for p in tmp_path.iterdir()} == {"keras_onnx_abcdefgh", f"keras_onnx_{live}_abcdefgh"}
    with pytest.raises(AssertionError, match=f"keras_onnx_{live}_abcdefgh"):  # twin: the check sees a leftover
        assert_no_work_folder(tmp_path)


PARENT = """
import sys, time, types
parity = types.ModuleType("parity")  # parity.onnx.export alone, without the package's torch imports (5 s)
parity.__path__ = ["parity"]
sys.modules["parity"] = parity
from parity.onnx import export as onnx_export
child = onnx_export._spawn_child()
print(child.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux'")
def test_the_keras_export_child_dies_with_its_parent():
    """The parent killed outright takes its export child along (it would otherwise go on importing
    for seconds, then run the job it got and write the temp file after the next writer cleaned up)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        env=ENV,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        child = int(parent.stdout.readline())
        time.sleep(1.0)  # the child is importing keras and torch by now
        assert process_alive(child)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 2.0
    while process_alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not process_alive(child), "the export child outlived its killed parent"
