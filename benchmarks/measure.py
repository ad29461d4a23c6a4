"""How the suite measures: interleaved timing, peak memory, the sgemm ceiling, the CPU's features.

Framework-neutral (numpy and the standard library only), so the torch process and each Keras
backend's process measure the same way.

* **Interleaved**: every contender of one (model, batch) group is called in each round, round after
  round, so a slow minute of a shared machine hits all of them alike; the ratio of medians is then
  fair even when the absolute numbers drift. The order rotates each round: a contender that leaves
  threads busy behind it (onnxruntime's spinning workers) does not always slow the same one.
* **Peak memory**: before a contender's first timed call, freed memory is handed back to the
  system (``malloc_trim``) and a thread samples the resident set every millisecond during that
  call; the figure is its peak minus the resident set just before: what one call allocates on
  top of the loaded model (activations, workspaces).
* **Ceiling**: a 4096x4096 float32 matrix product, the fastest thing the machine does, measured in
  the same process as the models it is compared with.
"""

from __future__ import annotations

import math
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """This process's resident set now (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:  # pragma: no cover  (not Linux)
        return 0


def tree_rss_bytes(root: int) -> int:
    """The resident sets of ``root`` and all its descendants, summed (Linux /proc; 0 elsewhere): a
    command that starts a child is as big as both together, which ``/usr/bin/time`` (the largest
    single process) does not say."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):  # gone meanwhile
                pass
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
    return total


class TreePeakMemory(threading.Thread):
    """Samples a process tree's summed resident set until ``stop()``; ``mb`` is its peak."""

    def __init__(self, root: int, interval_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.root, self.interval_s, self.peak = root, interval_s, 0
        self._stop_event = threading.Event()
        self.start()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.root))
            self._stop_event.wait(self.interval_s)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.peak / 2**20


class PeakMemory:
    """``with PeakMemory() as peak: fn()`` then ``peak.mb``: resident-set growth at its peak."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s = interval_s
        self.mb = 0.0
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, rss_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self._base = self._peak = rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, rss_bytes())
        self.mb = (self._peak - self._base) / 2**20


@dataclass
class Timing:
    """One contender's calls: seconds per call, and the memory its first call needed."""

    seconds: list[float] = field(default_factory=list)
    warmup_s: float = float("nan")
    peak_mb: float = float("nan")

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.seconds, q)) if self.seconds else float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


def calls_per_round(warmup_s: float, target_s: float, rounds: int, cap: int = 40) -> int:
    """Enough calls that a group's fastest contender is timed for about ``target_s`` in all, at
    least one per round (so p50/p90 of a 40 ms model rest on dozens of calls, a 3 s one on three)."""
    if not math.isfinite(warmup_s) or warmup_s <= 0:
        return 1
    return max(1, min(cap // max(rounds, 1), int(target_s / (warmup_s * rounds))))


def release_freed_memory() -> None:
    """Hands memory that malloc keeps after ``free`` back to the system (glibc's ``malloc_trim``),
    so the next call's allocations show in the resident set again; a no-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover  (not glibc)
        pass


def interleaved(
    contenders: dict[str, Callable[[], object]], rounds: int, target_s: float, sync: Callable[[], None] = lambda: None
) -> dict[str, Timing]:
    """Warms up each contender once (compiling, allocating), then times them in turns: ``rounds``
    rounds of the same number of calls each. Each one's first timed call also gives its peak
    memory (freed memory handed back first, so its allocations show; the median of the others
    is not moved by that one call's page faults)."""
    timings = {name: Timing() for name in contenders}
    for name, fn in contenders.items():
        start = time.perf_counter()
        fn()
        sync()
        timings[name].warmup_s = time.perf_counter() - start
    fastest = min(t.warmup_s for t in timings.values())
    per_round = calls_per_round(fastest, target_s, rounds)
    names = list(contenders)
    for r in range(rounds):
        for name in (
            names[r % len(names) :] + names[: r % len(names)]
        ):  # rotated: no one always follows the same neighbour
            fn = contenders[name]
            for i in range(per_round):
                peak = PeakMemory() if r == 0 and i == 0 else None
                if peak:
                    release_freed_memory()
                    peak.__enter__()
                start = time.perf_counter()
                fn()
                sync()
                timings[name].seconds.append(time.perf_counter() - start)
                if peak:
                    peak.__exit__(None, None, None)
                    timings[name].peak_mb = peak.mb
    return timings


def sgemm_gflops(n: int = 4096, repeats: int = 3, matmul: Callable | None = None) -> float:
    """The best of ``repeats`` float32 n x n products, in GFLOP/s (2 n^3 flops each).
    ``matmul(a, b)`` returns a no-argument callable doing the product (default: numpy's ``a @ b``;
    the torch process passes torch's, the library its models use)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    run = matmul(a, b) if matmul else (lambda: a @ b)
    run()
    best = min(_seconds(run) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover
        pass
    import platform

    return platform.processor() or platform.machine()


def top1_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows whose arg-max class is the same."""
    return float(np.mean(np.argmax(a, axis=-1) == np.argmax(b, axis=-1)))


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected|: one figure for a whole logits batch (NaN if either
    holds a NaN or Inf, so a broken path can never look exact)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if (
        actual.shape != expected.shape
        or actual.size == 0
        or not (np.isfinite(actual).all() and np.isfinite(expected).all())
    ):
        return float("nan")
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


def summarise(timing: Timing, batch: int, macs_per_image: int) -> dict:
    """The figures of one contender's row: images/s, latency p50/p90 (ms), peak MB, GFLOP/s."""
    median = timing.median
    return {
        "images_s": batch / median,
        "p50_ms": timing.percentile(50) * 1e3,
        "p90_ms": timing.percentile(90) * 1e3,
        "best_ms": min(timing.seconds) * 1e3 if timing.seconds else float("nan"),
        "calls": len(timing.seconds),
        "warmup_s": timing.warmup_s,
        "peak_mb": timing.peak_mb,
        "gflops": 2 * macs_per_image * batch / median / 1e9,
    }


def compare_rows(ours: dict, reference: dict, label: str) -> None:
    """Adds ``ratio`` (throughput ours/reference, medians) and ``ratio_best`` (fastest calls: a
    busy machine only ever slows a call down, so this one is the steadier on a shared VM)."""
    ours.update(
        reference=label,
        ratio=ours["images_s"] / reference["images_s"],
        ratio_best=reference["best_ms"] / ours["best_ms"],
    )
