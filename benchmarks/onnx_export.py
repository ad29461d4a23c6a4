"""Time and peak memory of every model's ONNX export, torch and keras side, each in a fresh process.

    python benchmarks/onnx_export.py [--models vgg19 resnet50 ...] [--out benchmarks/results/onnx_export.json]

Each export runs as ``python -m parity export`` under ``/usr/bin/time -v`` so the peak resident
memory is the whole process tree's maximum (the keras route includes its torch-backend child),
measured by the kernel rather than sampled. Prints a table and writes JSON (atomically).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

import cnnspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cnnbase.atomic import write_text  # noqa: E402


def run_one(name: str, framework: str, workdir: Path) -> dict:
    out = workdir / f"{name}.{framework}.onnx"
    cmd = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "parity",
        "export",
        name,
        "--framework",
        framework,
        "--out",
        str(out),
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    peak_kb = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    row = {
        "model": name,
        "framework": framework,
        "ok": proc.returncode == 0,
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(int(peak_kb.group(1)) / 1024) if peak_kb else None,
    }
    if proc.returncode == 0:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        row.update(export_s=info["seconds"], size_mb=info["size_mb"])
        out.unlink()
    else:
        row["error"] = proc.stderr[-500:]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=cnnspec.names())
    parser.add_argument("--frameworks", nargs="+", default=["torch", "keras"])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "onnx_export.json"))
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(m, f) for m in args.models for f in args.frameworks]
        for name, framework in tqdm(jobs, desc="exports", unit="export"):
            rows.append(run_one(name, framework, Path(tmp)))
            r = rows[-1]
            tqdm.write(
                f"{name:17s} {framework:6s} {'ok' if r['ok'] else 'FAILED':7s} wall {r['wall_s']:6.1f}s  export "
                f"{r.get('export_s', float('nan')):6.1f}s  peak {r['peak_rss_mb']} MB  size {r.get('size_mb', '-')} "
                "MB"
            )
    write_text(args.out, json.dumps({"rows": rows}, indent=2))
    print(f"wrote {args.out}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    from cnnbase import cli

    sys.exit(cli.run("benchmarks/onnx_export.py", lambda argv: main(argv)))  # one-line errors, --debug (cnnbase.cli)
