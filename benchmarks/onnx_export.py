"""Time and peak memory of every model's ONNX export, torch and keras side, each in a fresh process.

    python benchmarks/onnx_export.py [--models vgg19 resnet50 ...] [--out benchmarks/results/onnx_export.json]
    python benchmarks/onnx_export.py --models vgg19 --frameworks keras --repeat 3 \
        --out benchmarks/results/export_vgg19_keras.json    # the cold command a user times

Each export runs as ``python -m parity export`` (a cold process, as a user types it) under
``/usr/bin/time -v``: ``peak_rss_mb`` is the largest single process, measured by the kernel;
``tree_peak_mb`` is the whole process tree summed (the keras route's parent and its torch-backend
export child together), sampled every 50 ms from /proc. ``--repeat`` runs each export that many
times and reports the median and fastest wall time. The command's own JSON line splits the export's
seconds. Prints a table, writes JSON and a markdown table beside it (atomically); the CPU is named.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

import cnnspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.measure import TreePeakMemory, cpu_name  # noqa: E402
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
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    tree = TreePeakMemory(child.pid)
    stdout, stderr = child.communicate()
    wall = time.perf_counter() - start
    proc = subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)
    peak_kb = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    row = {
        "model": name,
        "framework": framework,
        "ok": proc.returncode == 0,
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(int(peak_kb.group(1)) / 1024) if peak_kb else None,
        "tree_peak_mb": round(tree.stop()),
    }
    if proc.returncode == 0:
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        row.update(export_s=info["seconds"], size_mb=info["size_mb"])
        row.update({k: v for k, v in info.items() if k.endswith("_s") or k == "phases"})
        out.unlink()
    else:
        row["error"] = proc.stderr[-500:]
    return row


def _summary(rows: list[dict]) -> list[dict]:
    """Per (model, framework): the median and fastest wall time and the largest peaks of its runs."""
    out = []
    for key in dict.fromkeys((r["model"], r["framework"]) for r in rows):
        runs = [r for r in rows if (r["model"], r["framework"]) == key and r["ok"]]
        if not runs:
            out.append({"model": key[0], "framework": key[1], "ok": False})
            continue
        out.append(
            {
                "model": key[0],
                "framework": key[1],
                "ok": True,
                "runs": len(runs),
                "wall_s_median": round(statistics.median(r["wall_s"] for r in runs), 1),
                "wall_s_fastest": min(r["wall_s"] for r in runs),
                "export_s_median": round(statistics.median(r["export_s"] for r in runs), 2),
                "largest_process_mb": max(r["peak_rss_mb"] or 0 for r in runs),
                "tree_peak_mb": max(r["tree_peak_mb"] for r in runs),
            }
        )
    return out


def _markdown(summary: list[dict], cpu: str) -> str:
    lines = [
        f"`python -m parity export MODEL --framework F`, cold processes; {cpu}:",
        "",
        "| model | framework | runs | whole command s (median / fastest) | export s (median) "
        "| largest process MB | process tree MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        if not s["ok"]:
            lines.append(f"| {s['model']} | {s['framework']} | failed | | | | |")
            continue
        lines.append(
            f"| {s['model']} | {s['framework']} | {s['runs']} | {s['wall_s_median']} / {s['wall_s_fastest']} "
            f"| {s['export_s_median']} | {s['largest_process_mb']} | {s['tree_peak_mb']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", nargs="+", default=cnnspec.names())
    parser.add_argument("--frameworks", nargs="+", default=["torch", "keras"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per export (median and fastest wall time)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "onnx_export.json"))
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(m, f) for m in args.models for f in args.frameworks for _ in range(args.repeat)]
        for name, framework in tqdm(jobs, desc="exports", unit="export"):
            rows.append(run_one(name, framework, Path(tmp)))
            r = rows[-1]
            tqdm.write(
                f"{name:17s} {framework:6s} {'ok' if r['ok'] else 'FAILED':7s} wall {r['wall_s']:6.1f}s  export "
                f"{r.get('export_s', float('nan')):6.1f}s  peak {r['peak_rss_mb']} MB  tree {r['tree_peak_mb']} MB  "
                f"size {r.get('size_mb', '-')} MB"
            )
    summary = _summary(rows)
    write_text(args.out, json.dumps({"cpu": cpu_name(), "summary": summary, "rows": rows}, indent=2))
    md = _markdown(summary, cpu_name())
    write_text(str(Path(args.out).with_suffix(".md")), md)
    print(md + f"wrote {args.out} and its .md")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    from cnnbase import cli

    sys.exit(cli.run("benchmarks/onnx_export.py", lambda argv: main(argv)))  # one-line errors, --debug (cnnbase.cli)
